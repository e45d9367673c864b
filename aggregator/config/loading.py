"""Load and validate the YAML configuration.

``load_config(path)`` reads one YAML file and returns an :class:`~.schema.AppConfig`, or raises
:class:`~aggregator.errors.ConfigError` whose ``problems`` are lines shaped like
``config/aggregator.yaml:14: sources[2].url: <what is wrong>``. Relative paths in the file resolve
against the file's own folder. This module holds no business logic: it owns the YAML loader
(duplicate keys refused, ``!file``), the line of every key path, the error messages, the
``$AGGREGATOR_CONFIG`` default path, the check that a source's file exists, and path resolution.

Does not: define what the file may hold (see :mod:`.schema` and the section modules).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml
from pydantic import ValidationError

from aggregator.config.schema import AppConfig, _raw_reference_problems, _ReferenceErrors
from aggregator.errors import ConfigError
from aggregator.secret import FileRef
from aggregator.select.rule_compile import RuleError

CONFIG_ENV = "AGGREGATOR_CONFIG"
DEFAULT_CONFIG = Path("config/aggregator.yaml")


# -- YAML with line numbers --------------------------------------------------------------------


#: libyaml's SafeLoader when PyYAML was built with it (several times faster), else PyYAML's.
_SafeLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _UniqueKeyLoader(_SafeLoader):  # type: ignore[misc,valid-type]
    """A SafeLoader (libyaml's when PyYAML has it) that refuses duplicate keys instead of keeping
    the last one silently."""


def _construct_mapping(
    loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False
) -> dict[Any, Any]:
    mapping: dict[Any, Any] = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in mapping:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark
            )
        mapping[key] = loader.construct_object(value_node, deep=deep)
    return mapping


_UniqueKeyLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
    _construct_mapping,
)


def _construct_file(loader: _UniqueKeyLoader, node: yaml.Node) -> FileRef:
    """``!file path``: a secret read from a file, relative to the config's folder."""
    if not isinstance(node, yaml.ScalarNode) or not str(node.value).strip():
        raise yaml.constructor.ConstructorError(
            None, None, "!file needs a path, such as !file secrets/token", node.start_mark
        )
    return FileRef(str(node.value).strip())


_UniqueKeyLoader.add_constructor("!file", _construct_file)


def _index_lines(
    node: yaml.Node | None, path: tuple[Any, ...] = ()
) -> Iterator[tuple[tuple[Any, ...], int]]:
    """Yield (key path, 1-based line) for every node of a composed YAML document."""
    if node is None:
        return
    yield path, node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = key_node.value
            yield (*path, key), key_node.start_mark.line + 1
            for sub_path, line in _index_lines(value_node, (*path, key)):
                if sub_path != (*path, key):
                    yield sub_path, line
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            yield from _index_lines(item, (*path, index))


def _line_for(lines: dict[tuple[Any, ...], int], loc: tuple[Any, ...]) -> int:
    """The line of the deepest part of ``loc`` that exists in the file."""
    for end in range(len(loc), -1, -1):
        if loc[:end] in lines:
            return lines[loc[:end]]
    return 1


def _format_loc(loc: tuple[Any, ...]) -> str:
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += ("." if text else "") + str(part)
    return text or "(top level)"


def _clean_message(error: Mapping[str, object]) -> str:
    message = str(error.get("msg", "invalid value"))
    if error.get("type") == "extra_forbidden":
        return "unknown key"
    if error.get("type") == "missing":
        return "required key is missing"
    message = message.removeprefix("Value error, ")
    if error.get("type") == "literal_error":
        value = error.get("input")
        message = f"{value!r} is not allowed: {message.removeprefix('Input should be ')}"
    return message


def _loc_from_pydantic(loc: tuple[Any, ...]) -> tuple[Any, ...]:
    # pydantic adds the names of union members / validators to loc; keep the key path only.
    return tuple(
        part
        for part in loc
        if isinstance(part, int) or not str(part).startswith(("function-", "union["))
    )


def resolve_config_path(path: str | os.PathLike[str] | None) -> Path:
    """The config file to use: the given path, else ``$AGGREGATOR_CONFIG``, else the default."""
    if path:
        return Path(path)
    if os.environ.get(CONFIG_ENV):
        return Path(os.environ[CONFIG_ENV])
    return DEFAULT_CONFIG


def load_config(path: str | os.PathLike[str]) -> AppConfig:
    """Read, validate and resolve one configuration file.

    Raises :class:`ConfigError` listing every problem found, each as ``file:line: key: message``.
    """
    config_path = Path(path)
    shown = str(path)
    try:
        text = config_path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError([f"{shown}: no such file"]) from None
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError([f"{shown}: cannot read: {error}"]) from None
    try:
        node = yaml.compose(text, Loader=_SafeLoader)  # noqa: S506 - a SafeLoader
        data = yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None) or getattr(error, "context_mark", None)
        line = mark.line + 1 if mark else 1
        problem = getattr(error, "problem", None) or str(error)
        raise ConfigError([f"{shown}:{line}: invalid YAML: {problem}"]) from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        line = node.start_mark.line + 1 if node is not None else 1
        raise ConfigError(
            [f"{shown}:{line}: the file must hold a mapping of keys (database, sources, ...)"]
        )
    lines = dict(_index_lines(node))
    try:
        config = AppConfig.model_validate(data, context={"folder": config_path.resolve().parent})
    except ValidationError as error:
        problems = []
        reported: set[tuple[Any, ...]] = set()
        for item in error.errors():
            context = item.get("ctx", {}).get("error")
            if isinstance(context, _ReferenceErrors):
                for loc, message in context.problems:
                    problems.append(
                        (
                            _line_for(lines, loc),
                            f"{shown}:{_line_for(lines, loc)}: {_format_loc(loc)}: {message}",
                        )
                    )
                continue
            loc = _loc_from_pydantic(tuple(item["loc"]))
            message = _clean_message(item)
            if isinstance(context, RuleError):
                # A rule names its own item ("exclude[1].author"): point at that line.
                loc = _join_loc(loc, _parse_path(context.path))
                message = context.reason
            line = _line_for(lines, loc)
            reported.add(loc)
            problems.append((line, f"{shown}:{line}: {_format_loc(loc)}: {message}"))
        if reported:
            # Field errors stop pydantic before the reference check: run it on the raw data.
            for loc, message in _raw_reference_problems(data):
                if loc not in reported:
                    line = _line_for(lines, loc)
                    problems.append((line, f"{shown}:{line}: {_format_loc(loc)}: {message}"))
        problems.sort(key=lambda pair: pair[0])
        raise ConfigError([message for _, message in problems]) from None
    config = config.model_copy(
        update={
            "config_lines": tuple((_format_loc(loc), line) for loc, line in lines.items() if loc)
        }
    )
    missing = []
    for index, source in enumerate(config.sources):
        for key, value in (("url", source.url), ("comments_url", source.comments_url)):
            problem = missing_file_problem(value, config_path.resolve().parent)
            if problem:
                where = f"sources[{index}].{key}"
                line = config.line_of(where) or 1
                missing.append((line, f"{shown}:{line}: {where}: {problem}"))
    if missing:
        missing.sort(key=lambda pair: pair[0])
        raise ConfigError([message for _, message in missing])
    return _resolve_paths(config, config_path)


_HOST_LIKE = re.compile(r"^(?:[A-Za-z0-9-]+\.)+[A-Za-z]{2,63}(?::\d{1,5})?(?:[/?#]|$)")
# A bare "feed.xml" is a file name that happens to look like a host name.
_FILE_SUFFIXES = (".xml", ".rss", ".atom", ".rdf", ".json", ".html", ".htm", ".txt", ".opml")


def missing_file_problem(url: str | None, folder: Path) -> str | None:
    """Why a source's ``url`` (or ``comments_url``), as resolved, cannot be read: a value that
    is neither an http(s) URL nor an existing file. ``None`` when it is fine.

    A value that looks like a host name (``example.com/feed``) gets a suggestion of the
    https URL that was probably meant. Pure but for one ``stat``.
    """
    if url is None or urlsplit(url).scheme in ("http", "https"):
        return None
    from urllib.request import url2pathname

    resolved = resolve_source_url(url, folder)
    if Path(url2pathname(urlsplit(resolved).path)).is_file():
        return None
    original = url.strip()
    if original.startswith("file:"):
        return f"{original!r}: no such file"
    message = f"{original!r} is neither an http(s) URL nor an existing file"
    bare = "/" not in original and original.lower().endswith(_FILE_SUFFIXES)
    if _HOST_LIKE.match(original) and not bare:
        message += f" (did you mean 'https://{original}'?)"
    return message


_PATH_PART = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def _parse_path(path: str) -> tuple[Any, ...]:
    """``exclude[1].author`` -> ``("exclude", 1, "author")``: the inverse of _format_loc."""
    return tuple(int(index) if index else key for key, index in _PATH_PART.findall(path))


def _join_loc(loc: tuple[Any, ...], path: tuple[Any, ...]) -> tuple[Any, ...]:
    """Append a rule's own path to where pydantic found it; a field validator's loc already
    ends with the path's first key (``killfile`` + ``killfile[0]``)."""
    if loc and path and loc[-1] == path[0]:
        return loc[:-1] + path
    return loc + path


def _resolve_paths(config: AppConfig, config_path: Path) -> AppConfig:
    folder = config_path.resolve().parent
    sources = tuple(
        source.model_copy(
            update={
                "url": resolve_source_url(source.url, folder),
                "comments_url": resolve_source_url(source.comments_url, folder)
                if source.comments_url
                else None,
            }
        )
        for source in config.sources
    )
    return config.model_copy(
        update={
            "database": (folder / config.database).resolve(),
            "public_dir": (folder / config.public_dir).resolve(),
            "sources": sources,
            "config_path": config_path.resolve(),
        }
    )


def resolve_source_url(url: str, folder: Path) -> str:
    """Turn a bare or relative path into an absolute ``file://`` URL; leave real URLs alone."""
    parts = urlsplit(url)
    if parts.scheme in ("http", "https"):
        return url
    if parts.scheme == "file":
        path = (
            Path(parts.path)
            if parts.netloc in ("", "localhost")
            else Path(parts.netloc + parts.path)
        )
        if not path.is_absolute():
            path = folder / path
        return path.resolve().as_uri()
    return (folder / url).resolve().as_uri()
