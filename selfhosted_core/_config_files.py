"""Reading config files (YAML, TOML, JSON) and resolving `${VAR}` references."""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from selfhosted_core.errors import ConfigurationError

if TYPE_CHECKING:
    import yaml

_FORMATS = {".yaml": "YAML", ".yml": "YAML", ".toml": "TOML", ".json": "JSON"}

_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def read_config_file(path: Path) -> Any:
    """Parse `path` by its suffix; every failure becomes a `ConfigurationError` naming the file.

    The parsers are imported here: most programs pass a `Config` or a URL and never read a
    file, and importing them cost 11 ms of `import selfhosted_core` (`make bench`).
    """
    import yaml  # noqa: PLC0415

    text = _read_text(path)
    suffix = path.suffix.lower()
    kind = _FORMATS.get(suffix)
    if kind is None:
        raise ConfigurationError(
            f"{path}: unsupported config format {suffix!r}; use .yaml, .toml or .json"
        )
    try:
        return _parse(text, kind)
    except yaml.YAMLError as exc:
        problem = _yaml_problem(exc)
    except RecursionError as exc:
        # The parsers recurse once per nesting level: `[[[[...` is malformed, not a crash.
        raise ConfigurationError(f"{path}: {kind} nested too deeply") from exc
    except ValueError as exc:
        # TOML's and JSON's decode errors, and what a parser's conversions refuse (an integer
        # of more than 4,300 digits, Python's limit; a date that does not exist): their
        # messages give a position or a reason, never the offending text.
        raise ConfigurationError(f"{path}: invalid {kind}: {exc}") from exc
    # PyYAML's message quotes the offending line, which may hold a key: only the problem and
    # its position are kept, and the error is raised outside the handler.
    raise ConfigurationError(f"{path}: invalid YAML: {problem}")


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigurationError(f"{path}: cannot read config file: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        reason = exc.reason
    except ValueError as exc:
        # A name no file can have ("embedded null byte"); quoted, as it may not print.
        raise ConfigurationError(f"{str(path)!r}: cannot read config file: {exc}") from exc
    # Raised outside the handler: the decode error holds the whole file, keys and all, and
    # would stay reachable as the `__context__` even of an error raised `from None`.
    raise ConfigurationError(f"{path}: not UTF-8 text ({reason})")


def _parse(text: str, kind: str) -> Any:
    if kind == "YAML":
        import yaml  # noqa: PLC0415 - see read_config_file

        return yaml.safe_load(text)
    if kind == "TOML":
        if sys.version_info >= (3, 11):
            import tomllib  # noqa: PLC0415
        else:
            import tomli as tomllib  # noqa: PLC0415
        return tomllib.loads(text)
    return json.loads(text)


def expand_env(value: Any, environ: Mapping[str, str]) -> Any:
    """Replace `${VAR}` and `${VAR:-default}` in every string of a parsed config.

    Resolution happens after parsing, so a variable's value is never parsed as YAML or TOML.
    Every missing variable is reported, each with the path where it is used.
    """
    expansion = _Expansion(environ)
    try:
        resolved = expansion.expand(value, "")
    except RecursionError as exc:
        raise ConfigurationError("config: nested too deeply") from exc
    if expansion.missing:
        raise ConfigurationError(expansion.missing)
    return resolved


class _Expansion:
    """One walk over a parsed config, which YAML aliases may have made a graph, not a tree.

    A list or mapping an alias repeats is expanded once and shared, as it was in the file: ten
    aliases of ten aliases of ... must not mean ten to the ninth strings ("billion laughs").
    One that contains itself (`a: &a [*a]`) is refused.
    """

    def __init__(self, environ: Mapping[str, str]) -> None:
        self.environ = environ
        self.missing: list[str] = []
        self._done: dict[int, Any] = {}
        self._open: set[int] = set()

    def expand(self, value: Any, path: str) -> Any:
        if isinstance(value, str):
            return _expand_string(value, self.environ, path, self.missing)
        if not isinstance(value, list | dict):
            return value
        # Every node stays alive (in the parsed document) for the whole walk: ids are stable.
        node = id(value)
        if node in self._done:
            return self._done[node]
        if node in self._open:
            raise ConfigurationError(f"{path or 'config'}: contains itself (a recursive alias)")
        self._open.add(node)
        if isinstance(value, list):
            result: Any = [
                self.expand(item, f"{path}[{index}]") for index, item in enumerate(value)
            ]
        else:
            result = {
                key: self.expand(item, f"{path}.{key}" if path else str(key))
                for key, item in value.items()
            }
        self._open.discard(node)
        self._done[node] = result
        return result


def _expand_string(text: str, environ: Mapping[str, str], path: str, missing: list[str]) -> str:
    def substitute(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        if name in environ:
            return environ[name]
        if default is not None:
            return default
        missing.append(f"{path or 'config'}: environment variable {name} is not set")
        return ""

    return _REFERENCE.sub(substitute, text)


def _yaml_problem(exc: yaml.YAMLError) -> str:
    """What PyYAML found wrong and where, without the source line it would quote."""
    import yaml  # noqa: PLC0415 - loaded already: only a YAML file's error gets here

    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        return f"{exc.problem or 'syntax error'}{where}"
    return type(exc).__name__
