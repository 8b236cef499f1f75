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

_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def read_config_file(path: Path) -> Any:
    """Parse `path` by its suffix; every failure becomes a `ConfigurationError` naming the file.

    The parsers are imported here: most programs pass a `Config` or a URL and never read a
    file, and importing them cost 11 ms of `import selfhosted_core` (`make bench`).
    """
    import yaml  # noqa: PLC0415

    if sys.version_info >= (3, 11):
        import tomllib  # noqa: PLC0415
    else:
        import tomli as tomllib  # noqa: PLC0415

    suffix = path.suffix.lower()
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigurationError(f"{path}: cannot read config file: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigurationError(f"{path}: not UTF-8 text ({exc.reason})") from None
    try:
        if suffix in (".yaml", ".yml"):
            return yaml.safe_load(text)
        if suffix == ".toml":
            return tomllib.loads(text)
        if suffix == ".json":
            return json.loads(text)
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as exc:
        # Their messages give a position, never the offending text.
        raise ConfigurationError(f"{path}: invalid {suffix[1:].upper()}: {exc}") from exc
    except yaml.YAMLError as exc:
        problem: str | None = _yaml_problem(exc)
    else:
        problem = None
    if problem is not None:
        # PyYAML's message quotes the offending line, which may hold a key: only the problem
        # and its position are kept, and the error is raised outside the handler.
        raise ConfigurationError(f"{path}: invalid YAML: {problem}")
    raise ConfigurationError(
        f"{path}: unsupported config format {suffix!r}; use .yaml, .toml or .json"
    )


def expand_env(value: Any, environ: Mapping[str, str]) -> Any:
    """Replace `${VAR}` and `${VAR:-default}` in every string of a parsed config.

    Resolution happens after parsing, so a variable's value is never parsed as YAML or TOML.
    Every missing variable is reported, each with the path where it is used.
    """
    missing: list[str] = []
    resolved = _expand(value, environ, "", missing)
    if missing:
        raise ConfigurationError(missing)
    return resolved


def _expand(value: Any, environ: Mapping[str, str], path: str, missing: list[str]) -> Any:
    if isinstance(value, str):
        return _expand_string(value, environ, path, missing)
    if isinstance(value, list):
        return [
            _expand(item, environ, f"{path}[{index}]", missing) for index, item in enumerate(value)
        ]
    if isinstance(value, dict):
        return {
            key: _expand(item, environ, f"{path}.{key}" if path else str(key), missing)
            for key, item in value.items()
        }
    return value


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
