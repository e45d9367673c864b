"""Private outputs: who may read an output's feeds and pages (``outputs[].access``).

An output with ``access`` is private: its feeds are published under
``public_dir/private/feeds`` (a plain web server serving ``public_dir/feeds`` cannot expose
them by mistake), it is left out of ``/`` and ``/opml`` for anyone without its credential, and
the server answers 401 for its feeds and 404 for its pages without it.

The credential is a token (``?token=...`` or ``Authorization: Bearer ...``) or a user and
password (HTTP basic). Secrets may be written ``${ENV_VAR}``: :func:`expand_env` reads them
from the environment when the configuration is loaded. They are kept as pydantic
``SecretStr`` values, shown as ``**********`` anywhere the configuration is printed, and
compared in constant time (:func:`hmac.compare_digest`).
"""

from __future__ import annotations

import base64
import binascii
import hmac
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from aggregator.config.outputs import AccessConfig, OutputConfig
    from aggregator.config.schema import AppConfig

_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
#: The realm named in ``WWW-Authenticate``.
REALM = "aggregator"


def expand_env(value: str) -> str:
    """``value`` with every ``${NAME}`` replaced by the environment variable ``NAME``.

    Raises ``ValueError`` naming the variable (never its value) when it is not set.
    """

    def variable(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in os.environ:
            raise ValueError(f"environment variable {name} is not set")
        return os.environ[name]

    return _ENV.sub(variable, value)


def feeds_folder(config: AppConfig, output: OutputConfig) -> Path:
    """Where an output's feed files are written: ``public_dir/feeds``, or
    ``public_dir/private/feeds`` for a private output."""
    if output.access is not None:
        return config.public_dir / "private" / "feeds"
    return config.public_dir / "feeds"


def _same(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))


def allowed(
    access: AccessConfig | None, headers: Mapping[str, str], query: Mapping[str, str]
) -> bool:
    """Whether a request with these headers and query parameters may read the output.

    ``headers`` keys are lower case (as starlette gives them). An output without ``access``
    is open to everyone.
    """
    if access is None:
        return True
    authorization = headers.get("authorization", "")
    scheme, _, credential = authorization.partition(" ")
    credential = credential.strip()
    if access.token is not None:
        expected = access.token.get_secret_value()
        if scheme.lower() == "bearer" and credential:
            return _same(credential, expected)
        token = query.get("token")
        return token is not None and _same(token, expected)
    if access.basic is not None and scheme.lower() == "basic" and credential:
        try:
            decoded = base64.b64decode(credential, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return False
        user, separator, password = decoded.partition(":")
        # Both compared, always, so the time taken does not tell which one was wrong.
        user_ok = _same(user, access.basic.user)
        password_ok = _same(password, access.basic.password.get_secret_value())
        return bool(separator) and user_ok and password_ok
    return False


def challenge(access: AccessConfig) -> str:
    """The ``WWW-Authenticate`` header value for a private output."""
    if access.token is not None:
        return f'Bearer realm="{REALM}"'
    return f'Basic realm="{REALM}", charset="UTF-8"'


def remove_public_copies(public_feeds: Path, name: str) -> None:
    """Remove what an output published under ``public_dir/feeds`` before it became private."""
    import shutil

    for path in public_feeds.glob(f"{glob_escape(name)}.*"):
        if path.is_file() and path.stem == name:
            path.unlink(missing_ok=True)
    folder = public_feeds / name
    if folder.is_dir():
        shutil.rmtree(folder, ignore_errors=True)


def glob_escape(name: str) -> str:
    """``name`` with glob metacharacters escaped."""
    import glob

    return glob.escape(name)
