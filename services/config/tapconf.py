# -*- test-case-name: tests.unit.config.test_config -*-
"""
tap.conf itself: its keys, reading the file into a L{Config}, one value at a
time (for flags), and writing a L{Config} back as text.

The INI syntax is checked here; each value by the parser its key declares
(L{services.config.sections}).  Every error is a L{ConfigError} of one line
that names the file, the section, the key, the value and what is allowed.
"""

from __future__ import annotations

import configparser
import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from services.config.parsers import InvalidValue, Parser
from services.config.sections import REFUSED_KEYS, SECTIONS, Config

__all__ = [
    "ConfigError",
    "describe",
    "formatConfig",
    "loadConfig",
    "parseConfig",
    "parseText",
    "parseValue",
    "replaceSection",
    "sectionFields",
]


class ConfigError(ValueError):
    """
    A configuration value is unusable.  The message is one line that names
    where the value came from, the section, the key, the bad value and what is
    allowed.
    """


def _attribute(section: str) -> str:
    return section.replace("-", "_")


def sectionFields(section: str) -> dict[str, dataclasses.Field[Any]]:
    """
    The keys of C{[section]}, each with its dataclass field (whose metadata
    holds its parser, what it allows and its description), in the order
    tap.conf documents them.

    @param section: a section name of tap.conf, such as C{"udp-echo"}.
    @raise KeyError: when there is no such section.
    """
    return {f.name: f for f in dataclasses.fields(SECTIONS[section])}


def parseText(section: str, key: str, text: str) -> Any:
    """
    Parse one value of C{[section] key}.

    @raise ValueError: with a message that says what is allowed.
    """
    parse: Parser = sectionFields(section)[key].metadata["parse"]
    return parse(text)


def parseValue(source: str, section: str, key: str, text: str) -> Any:
    """
    Parse one value of C{[section] key}, raising L{ConfigError} that names
    C{source}, the section, the key, the value and what is allowed.
    """
    try:
        return parseText(section, key, text)
    except InvalidValue as e:
        raise ConfigError(f"{source}: [{section}] {key} = {text.strip()!r}: {e}") from None


#: What starts a comment: a whole line, or the rest of a line after
#: whitespace.
_COMMENT_PREFIXES = ("#", ";")


def _syntaxProblem(error: configparser.Error) -> str:
    """
    Say what is wrong with the INI syntax, and where, in one line.
    """
    if isinstance(error, configparser.MissingSectionHeaderError):
        return (
            f"line {error.lineno}: {error.line.strip()!r} is outside any section; "
            "start the file with a section header such as [echo]"
        )
    if isinstance(error, configparser.DuplicateOptionError):
        return f"line {error.lineno}: [{error.section}] {error.option} is set twice"
    if isinstance(error, configparser.DuplicateSectionError):
        return f"line {error.lineno}: section [{error.section}] appears twice"
    if isinstance(error, configparser.ParsingError):
        lineno, quoted = error.errors[0]  # the line, as repr() shows it
        line = quoted[1:-1].replace("\\n", "").strip()
        return f"line {lineno}: cannot parse {line!r}; expected key = value"
    return " ".join(str(error).split())


def parseConfig(text: str, source: str = "<string>") -> Config:
    """
    Parse the text of a tap.conf into a L{Config}.  Keys that are absent keep
    their defaults.

    @raise ConfigError: for a syntax error, an unknown section or key, or a
        bad value.
    """
    # A "#" or ";" starts a comment on its own line, or after whitespace at
    # the end of a value (configparser only cuts an inline prefix that follows
    # whitespace), so "tcp:8007  # local only" is "tcp:8007" while endpoint
    # strings and paths that hold "#" or ";" themselves keep them.
    parser = configparser.RawConfigParser(
        strict=True, delimiters=("=",), comment_prefixes=_COMMENT_PREFIXES,
        inline_comment_prefixes=_COMMENT_PREFIXES,
    )
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    try:
        parser.read_string(text, source=source)
    except configparser.Error as e:
        raise ConfigError(f"{source}: {_syntaxProblem(e)}") from None
    sections: dict[str, Any] = {}
    for name in parser.sections():
        cls = SECTIONS.get(name)
        if cls is None:
            known = ", ".join(f"[{s}]" for s in SECTIONS)
            raise ConfigError(f"{source}: unknown section [{name}]; known sections: {known}")
        fields = sectionFields(name)
        values = {}
        for key, raw in parser.items(name):
            if (name, key) in REFUSED_KEYS:
                raise ConfigError(f"{source}: [{name}] {key}: {REFUSED_KEYS[name, key]}")
            if key not in fields:
                known = ", ".join(fields)
                raise ConfigError(f"{source}: [{name}] unknown key {key!r}; known keys: {known}")
            values[key] = parseValue(source, name, key, raw)
        sections[_attribute(name)] = cls(**values)
    return Config(source=source, **sections)


def loadConfig(path: str | Path) -> Config:
    """
    Read and parse the tap.conf at C{path}.

    @raise ConfigError: when the file cannot be read or is not valid.
    """
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError(f"{source}: cannot read the configuration file: {e.strerror or e}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{source}: not UTF-8 text") from None
    return parseConfig(text, source)


def replaceSection(config: Config, section: str, **changes: Any) -> Config:
    """
    Return C{config} with some keys of one section replaced, e.g. by
    command-line flags.
    """
    attribute = _attribute(section)
    updated = dataclasses.replace(getattr(config, attribute), **changes)
    return dataclasses.replace(config, **{attribute: updated})


def describe(section: str) -> Sequence[tuple[str, str, str, Any]]:
    """
    List C{(key, allowed, doc, default)} for every key of a section; the
    documentation and the tests read it.
    """
    return [
        (f.name, f.metadata["allowed"], f.metadata["doc"], f.default)
        for f in sectionFields(section).values()
    ]


def formatConfig(config: Config) -> str:
    """
    The text of a tap.conf that parses back to C{config}, every key
    spelled out: how a parent gives its workers exactly its own settings,
    flags included.
    """

    def text(value: Any) -> str:
        if isinstance(value, bool):
            return "yes" if value else "no"
        if isinstance(value, tuple):
            return " ".join(value)
        return str(value)

    lines = [f"# Written by the netservices parent from {config.source}."]
    for section in SECTIONS:
        values = getattr(config, _attribute(section))
        lines.append(f"[{section}]")
        for f in dataclasses.fields(values):
            lines.append(f"{f.name} = {text(getattr(values, f.name))}")
    return "\n".join(lines) + "\n"
