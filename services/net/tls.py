# -*- test-case-name: tests.unit.net.test_tls -*-
"""
TLS for stream listeners: certificate and key from PEM files, TLS 1.2 or
newer only.

Twisted's C{ssl:} endpoint string takes its files but no minimum protocol
version, so netservices builds the listener itself: the socket comes from
the rest of the description (or from systemd, or from a parent process), and
L{TLSServerEndpoint} layers TLS over it with a
L{twisted.internet.ssl.CertificateOptions} whose minimum is raised to the
configured version.  The files are read when the listener starts, so a
missing or mismatched file stops the daemon with one line naming it.

Twisted's TLS transport gathers the small writes of a connection and
encrypts them as one record on the next reactor iteration, with a timed
call per connection and per response.  L{SharedFlushClock} gives every
connection of a listener one timed call per iteration instead: the records
and the moment they are sent stay the same.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any
from pathlib import Path

from twisted.internet.defer import Deferred, fail
from twisted.logger import Logger
from twisted.internet.interfaces import (
    IListeningPort,
    IProtocolFactory,
    IStreamServerEndpoint,
)
from twisted.internet.ssl import CertificateOptions, TLSVersion
from zope.interface import implementer

from services import dataclass, logs
from services._twisted.tls import serverTLSFactory
from services.net.defaults import defaultReactor

__all__ = [
    "MINIMUM_VERSIONS",
    "TLSError",
    "TLSFiles",
    "SharedFlushClock",
    "TLSServerEndpoint",
    "certificateOptions",
]

#: The accepted values of C{[tls] minimum_version}.
MINIMUM_VERSIONS = {"1.2": TLSVersion.TLSv1_2, "1.3": TLSVersion.TLSv1_3}

_PEM_CERTIFICATE = re.compile(
    rb"-----BEGIN CERTIFICATE-----\r?\n.+?\r?\n-----END CERTIFICATE-----", re.DOTALL
)


class _Soon:
    """
    A call that L{SharedFlushClock} runs on the next reactor iteration,
    cancellable as a C{DelayedCall} is.
    """

    __slots__ = ("args", "called", "cancelled", "function")

    def __init__(self, function: Callable[..., object], args: tuple[Any, ...]) -> None:
        self.function = function
        self.args = args
        self.called = False
        self.cancelled = False

    def cancel(self) -> None:
        """
        Do not run it.
        """
        self.cancelled = True

    def active(self) -> bool:
        """
        Whether it is still to run.
        """
        return not (self.called or self.cancelled)


class SharedFlushClock:
    """
    The clock of a listener's TLS transports: the calls they ask for "as
    soon as possible" (C{callLater(0, ...)}, to send the writes gathered
    during this iteration as one record) all run from one timed call of
    the reactor, in the order asked; any other delay is the reactor's.

    @ivar reactor: the reactor whose timed calls it uses.
    """

    _log = Logger(observer=logs.observer)

    def __init__(self, reactor: Any) -> None:
        self.reactor = reactor
        self._due: list[_Soon] = []
        self._call: Any = None

    def seconds(self) -> float:
        """
        The reactor's time.
        """
        seconds: float = self.reactor.seconds()
        return seconds

    def callLater(self, delay: float, function: Callable[..., object], *args: Any) -> Any:
        """
        Run C{function(*args)} in C{delay} seconds: with the others asked
        for now when C{delay} is 0.
        """
        if delay:
            return self.reactor.callLater(delay, function, *args)
        soon = _Soon(function, args)
        self._due.append(soon)
        if self._call is None:
            self._call = self.reactor.callLater(0, self._runDue)
        return soon

    def _runDue(self) -> None:
        self._call = None
        due, self._due = self._due, []
        for soon in due:
            if soon.cancelled:
                continue
            soon.called = True
            try:
                soon.function(*soon.args)
            except Exception:
                self._log.failure("Unhandled error in a TLS flush")


class TLSError(ValueError):
    """
    The certificate or key cannot be used; the message names the file.
    """


@dataclass(frozen=True)
class TLSFiles:
    """
    Where a TLS listener's certificate and key are, and its minimum version.

    @ivar certificate: PEM file with the server certificate first, then any
        intermediate certificates (and the key, when C{key} is empty).
    @ivar key: PEM file with the private key; empty when it is in
        C{certificate}.
    @ivar chain: optional PEM file of intermediate certificates.
    @ivar minimumVersion: C{"1.2"} or C{"1.3"}.
    @ivar dhParameters: optional Diffie-Hellman parameters file.
    """

    certificate: str
    key: str = ""
    chain: str = ""
    minimumVersion: str = "1.2"
    dhParameters: str = ""


def _read(path: str, what: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as e:
        raise TLSError(f"cannot read the {what} file {path}: {(e.strerror or str(e)).lower()}") from None


def certificateOptions(files: TLSFiles, protocols: Sequence[bytes] = ()) -> CertificateOptions:
    """
    Load C{files} into server L{CertificateOptions} that refuse protocol
    versions older than C{files.minimumVersion}, and check that the key
    matches the certificate.

    @param protocols: the ALPN protocols offered, most preferred first
        (C{h2}, C{http/1.1}); none: no ALPN.

    @raise TLSError: when a file cannot be read or used.
    """
    # Imported here: only a process with a TLS listener needs them.
    from cryptography import x509
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives import serialization
    from OpenSSL import SSL

    certificatePEM = _read(files.certificate, "certificate")
    keyPEM = _read(files.key, "key") if files.key else certificatePEM
    blocks = _PEM_CERTIFICATE.findall(certificatePEM)
    if not blocks:
        raise TLSError(f"no PEM certificate in {files.certificate}")
    if files.chain:
        chain = _PEM_CERTIFICATE.findall(_read(files.chain, "certificate chain"))
        if not chain:
            raise TLSError(f"no PEM certificate in {files.chain}")
        blocks += chain
    try:
        certificates = [x509.load_pem_x509_certificate(block) for block in blocks]
    except ValueError:
        raise TLSError(f"invalid PEM certificate in {files.certificate}") from None
    keyFile = files.key or files.certificate
    try:
        key = serialization.load_pem_private_key(keyPEM, password=None)
    except TypeError:
        raise TLSError(f"the private key in {keyFile} is encrypted; give an unencrypted key") from None
    except (ValueError, UnsupportedAlgorithm):
        raise TLSError(f"no usable PEM private key in {keyFile}") from None
    dh = None
    if files.dhParameters:
        from twisted.internet.ssl import DiffieHellmanParameters
        from twisted.python.filepath import FilePath

        _read(files.dhParameters, "DH parameters")
        dh = DiffieHellmanParameters.fromFile(FilePath(files.dhParameters))
    # pyOpenSSL takes cryptography's objects (and deprecates its own);
    # Twisted's annotations still name pyOpenSSL's.
    options = CertificateOptions(
        privateKey=key,  # type: ignore[arg-type]
        certificate=certificates[0],  # type: ignore[arg-type]
        extraCertChain=certificates[1:] or None,  # type: ignore[arg-type]
        dhParameters=dh,
        raiseMinimumTo=MINIMUM_VERSIONS[files.minimumVersion],
        acceptableProtocols=list(protocols) or None,
    )
    try:
        options.getContext()
    except SSL.Error:
        raise TLSError(
            f"the private key in {keyFile} does not match the certificate in {files.certificate}"
        ) from None
    return options


@implementer(IStreamServerEndpoint)
class TLSServerEndpoint:
    """
    Serves TLS over the connections of another server endpoint.

    @ivar wrapped: the endpoint that provides the connections.
    """

    def __init__(
        self,
        wrapped: IStreamServerEndpoint,
        options: Callable[[], CertificateOptions],
        reactor: Any = None,
    ) -> None:
        """
        @param wrapped: the endpoint to listen on.
        @param options: called when listening starts; returns the TLS
            settings (so certificate files are read then).
        @param reactor: the reactor whose timed calls send the connections'
            gathered writes (L{SharedFlushClock}); the global one by default.
        """
        self.wrapped = wrapped
        self._options = options
        self._reactor = reactor

    def listen(self, protocolFactory: IProtocolFactory) -> Deferred[IListeningPort]:
        """
        Load the TLS settings and listen with C{protocolFactory} behind TLS.
        """
        try:
            options = self._options()
        except Exception:
            return fail()
        clock = SharedFlushClock(defaultReactor(self._reactor))
        factory = serverTLSFactory(options, protocolFactory, clock)
        factory.noisy = False
        return self.wrapped.listen(factory)
