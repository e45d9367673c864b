"""Add sources to the YAML configuration file, keeping its comments and layout (ruamel.yaml).

Used by ``aggregator add`` and ``aggregator opml import``. The edited file is validated with
:func:`~aggregator.config.loading.load_config` before it replaces the original (temp file +
rename), so a mistake leaves the original untouched and is reported as a :class:`ConfigError`.

Does not: remove or change existing sources, or fetch anything.
"""

from __future__ import annotations

import io
import os
import re
import tempfile
import unicodedata
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import YAMLError

from aggregator.config.loading import load_config
from aggregator.errors import ConfigError

MAX_NAME = 40
_NOT_NAME = re.compile(r"[^a-z0-9]+")


@dataclass(frozen=True)
class NewSource:
    """A source to append to the configuration."""

    name: str
    url: str
    title: str | None = None
    tags: tuple[str, ...] = ()
    comments_page: str | None = None  # ``auto`` when the posts' pages hold their comments
    # The comment system the posts' pages embed, when its settings are complete (issue 16).
    comment_system: tuple[tuple[str, str], ...] = ()


def derive_name(title: str | None, url: str, taken: Collection[str]) -> str:
    """A safe, unique source name from a title, else from the URL's host and path.

    Lower-case ASCII letters, digits and ``-`` (accents are dropped, other characters become
    ``-``), at most 40 characters; ``-2``, ``-3`` ... is added when the name is taken.
    """
    base = _slug(title or "")
    if not base:
        parts = urlsplit(url)
        host = (parts.hostname or "").removeprefix("www.")
        path = parts.path.replace("feed", " ").replace("rss", " ")
        base = _slug(f"{host} {path}") or _slug(host)
    base = base or "source"
    name, number = base, 1
    while name in taken:
        number += 1
        suffix = f"-{number}"
        name = base[: MAX_NAME - len(suffix)].rstrip("-") + suffix
    return name


def _slug(text: str) -> str:
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return _NOT_NAME.sub("-", ascii_text.lower()).strip("-")[:MAX_NAME].rstrip("-")


def _yaml() -> YAML:
    yaml = YAML()  # round-trip: comments, key order and quoting are kept
    yaml.preserve_quotes = True
    yaml.width = 4096
    # The layout of config/aggregator.yaml: "sources:" then "  - name: ..." items.
    yaml.indent(mapping=2, sequence=4, offset=2)
    return yaml


def add_sources(config_path: Path, sources: Sequence[NewSource]) -> None:
    """Append ``sources`` to the ``sources:`` list of the configuration file.

    Raises :class:`ConfigError` if the file cannot be read or written, or if the result would
    not be a valid configuration (for example a name that is already taken).
    """
    if not sources:
        return
    shown = str(config_path)
    try:
        text = config_path.read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigError([f"{shown}: cannot read: {error.strerror or error}"]) from None
    yaml = _yaml()
    try:
        data = yaml.load(text)
    except YAMLError as error:
        raise ConfigError([f"{shown}: invalid YAML: {error}"]) from None
    if data is None:
        data = CommentedMap()
    if not isinstance(data, CommentedMap):
        raise ConfigError([f"{shown}:1: the file must hold a mapping of keys"])
    listed = data.get("sources")
    if not isinstance(listed, CommentedSeq) or listed.fa.flow_style():
        # Absent, null or written "[]": start a block list, keeping what was there.
        listed = CommentedSeq(listed or [])
        data["sources"] = listed
    for source in sources:
        item = CommentedMap()
        item["name"] = source.name
        item["url"] = source.url
        if source.title:
            item["title"] = source.title
        if source.tags:
            tags = CommentedSeq(source.tags)
            tags.fa.set_flow_style()
            item["tags"] = tags
        if source.comments_page:
            item["comments_page"] = source.comments_page
        if source.comment_system:
            item["comment_system"] = CommentedMap(source.comment_system)
        listed.append(item)
    buffer = io.StringIO()
    yaml.dump(data, buffer)
    _replace_validated(config_path, buffer.getvalue())


def _replace_validated(config_path: Path, text: str) -> None:
    folder = config_path.resolve().parent
    try:
        fd, temp = tempfile.mkstemp(prefix=f".{config_path.name}.", suffix=".yaml", dir=folder)
    except OSError as error:
        raise ConfigError([f"{config_path}: cannot write: {error.strerror or error}"]) from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        try:
            load_config(temp)  # same folder, so relative paths resolve the same way
        except ConfigError as error:
            raise ConfigError(
                [problem.replace(temp, str(config_path)) for problem in error.problems]
            ) from None
        mode = config_path.stat().st_mode & 0o777 if config_path.exists() else 0o644
        os.chmod(temp, mode)
        os.replace(temp, config_path)
    except OSError as error:
        raise ConfigError([f"{config_path}: cannot write: {error.strerror or error}"]) from None
    finally:
        Path(temp).unlink(missing_ok=True)
