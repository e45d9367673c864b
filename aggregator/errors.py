"""The one exception tree of aggregator.

Every error a user can cause or meet derives from :class:`AggregatorError`, so the CLI and the
daemon can turn any of them into one clear line instead of a traceback.
"""

from __future__ import annotations

from aggregator.terminal import safe_text


class AggregatorError(Exception):
    """Root of every error aggregator raises on purpose.

    Its message often quotes the outside world (a reason phrase, a server's error text, a
    feed's bytes): terminal control sequences are removed from it here, where every error is
    made, before anything stores, logs or prints it (:func:`aggregator.terminal.safe_text`).
    """

    def __init__(self, message: object = "", *args: object):
        super().__init__(safe_text(message, newlines=True), *args)


class ConfigError(AggregatorError):
    """The configuration file is missing, unreadable or invalid.

    ``problems`` holds one ``file:line: key.path: message`` line per problem.
    """

    def __init__(self, problems: list[str]):
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


class FetchError(AggregatorError):
    """A source could not be fetched (network error, HTTP error status, size limit ...)."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        headers: dict[str, str] | None = None,
    ):
        super().__init__(message)
        self.status = status
        # The response headers, verbatim (Retry-After may be an HTTP date: RFC 9110 10.2.3).
        self.headers = dict(headers or {})


class RateLimitedError(FetchError):
    """An API host asked us to wait (429, Retry-After, an exhausted rate-limit budget): no
    request is made to it before ``until`` (aware UTC)."""

    def __init__(self, message: str, *, until: object, status: int | None = None):
        super().__init__(message, status=status)
        self.until = until


class StoppedError(FetchError):
    """A request was not made because aggregator is stopping; nothing is recorded for it."""


class BlockedAddressError(FetchError):
    """A URL that came from outside the config points at a private or reserved address."""


class ParseError(AggregatorError):
    """A fetched document is not a feed that can be read."""


class StorageError(AggregatorError):
    """The database cannot be opened, migrated or written."""


class LockedError(StorageError):
    """Another aggregator daemon already holds the database."""


class NotFoundError(AggregatorError, LookupError):
    """A named source, output or entry does not exist."""


class PublishError(AggregatorError):
    """An output could not be rendered or written."""


class FeedNotFoundError(NotFoundError):
    """No feed could be found at (or from) a URL given to ``aggregator add``."""
