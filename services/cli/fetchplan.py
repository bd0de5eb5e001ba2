# -*- test-case-name: tests.integration.test_client_cli -*-
"""
What C{netservices fetch} will do, from its parsed arguments and the
environment: a L{Plan} (the URL, method, query, body, headers, credentials
and proxies), checked and combined before anything is sent, and the checks
of the files it names (C{--cacert}, C{-o}).  An unusable value raises
L{UnusableArgument}, whose message the command prints.
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from hyperlink import EncodedURL

from services.client import DEFAULT_USER_AGENT, ProxyError, ProxySettings

__all__ = ["MISSING", "Plan", "UnusableArgument", "unusableCA", "unwritable"]

#: The C{json} of a plan that sends no JSON (L{None} is JSON's null).
MISSING: Any = object()


class UnusableArgument(Exception):
    """
    A value on the command line is unusable.
    """


def _pairs(values: list[str], option: str) -> list[tuple[str, str]]:
    result = []
    for text in values:
        name, found, value = text.partition("=")
        if not found or not name:
            raise UnusableArgument(f"{option} {text!r}: expected NAME=VALUE")
        result.append((name, value))
    return result


def _headers(values: list[str]) -> list[tuple[str, str]]:
    result = []
    for text in values:
        name, found, value = text.partition(":")
        name = name.strip()
        if not found or not name or any(c in name for c in " \t\r\n"):
            raise UnusableArgument(f"-H {text!r}: expected 'Name: value'")
        result.append((name, value.strip()))
    return result


@dataclass(frozen=True)
class Plan:
    """
    What C{fetch} will do, from its parsed arguments and the environment.
    """

    url: str
    method: str
    params: list[tuple[str, str]]
    form: list[tuple[str, str]]
    json: Any
    headers: list[tuple[str, str]]
    userAgent: str
    auth: tuple[str, str] | None
    proxies: ProxySettings

    @classmethod
    def fromArgs(cls, args: argparse.Namespace, environ: Mapping[str, str]) -> Plan:
        """
        Check and combine the arguments.

        @raise UnusableArgument: for a value that cannot be used.
        """
        url = args.url if "://" in args.url else "http://" + args.url
        try:
            parsed = EncodedURL.from_text(url)
        except Exception as e:
            raise UnusableArgument(f"bad URL {args.url!r}: {e}") from None
        if parsed.scheme not in ("http", "https") or not parsed.host:
            raise UnusableArgument(
                f"unsupported URL {args.url!r}: expected http://HOST/... or https://HOST/..."
            )
        body: Any = None
        if args.json is not None:
            if args.data:
                raise UnusableArgument("-d and --json cannot be combined")
            try:
                body = json.loads(args.json)
            except (ValueError, RecursionError) as e:  # nesting too deep: RecursionError
                raise UnusableArgument(f"--json: not valid JSON: {e}") from None
        auth = None
        if args.user is not None:
            user, _, password = args.user.partition(":")
            auth = (user, password)
        try:
            if args.proxy is not None:
                proxies = ProxySettings.fromURL(
                    args.proxy, ProxySettings.fromEnvironment(environ).noProxy
                )
            else:
                proxies = ProxySettings.fromEnvironment(environ)
        except ProxyError as e:
            raise UnusableArgument(str(e)) from None
        method = args.method or ("POST" if (args.data or args.json is not None) else "GET")
        return cls(
            url=url,
            method=method.upper(),
            params=_pairs(args.query, "-q"),
            form=_pairs(args.data, "-d"),
            json=body if args.json is not None else MISSING,
            headers=_headers(args.header),
            userAgent=args.user_agent if args.user_agent is not None else DEFAULT_USER_AGENT,
            auth=auth,
            proxies=proxies,
        )

    def where(self) -> str:
        """
        The host and port connected to: the proxy's, if the URL uses one.
        """
        parsed = EncodedURL.from_text(self.url)
        port = parsed.port or (443 if parsed.scheme == "https" else 80)
        proxy = self.proxies.proxyFor(parsed.scheme, parsed.host, port)
        if proxy is not None:
            return f"proxy {_hostPort(proxy.host, proxy.port)}"
        return _hostPort(parsed.host, port)



def _hostPort(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"



def unusableCA(path: str | None) -> str | None:
    """
    What is wrong with the C{--cacert} file, in words (OpenSSL's own
    message does not name the problem): L{None} when it holds a PEM
    certificate.
    """
    if path is None:
        return None
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        return f"cannot read it: {(e.strerror or str(e)).lower()}"
    if b"-----BEGIN CERTIFICATE-----" not in data:
        return "not a PEM file of CA certificates (no -----BEGIN CERTIFICATE----- line)"
    return None


def unwritable(path: str | None) -> str | None:
    """
    Why C{-o FILE} cannot be written, checked before the request is sent:
    L{None} when its directory exists.
    """
    if path is None:
        return None
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        return f"cannot write: the directory {directory} does not exist"
    if os.path.isdir(path):
        return "cannot write: it is a directory"
    return None
