"""What the rewrite rules change, now: ``aggregator preview --explain``'s look at each source.

Stored entries hold only the rewritten text, so what a rule changed can be told only from the
feed as the source serves it: each source with rules is fetched once (as a poll fetches it:
its request options, the address rules, the configured URL), parsed in the sandbox and
rewritten there (:meth:`~aggregator.parse.sandbox.Parser.explain_rewrite`), and the changes
come back as :class:`~aggregator.models.SourceRewrites` values. Nothing is stored.

Does not: format the changes (see :mod:`aggregator.select.preview`) nor apply rules while
polling (see :func:`aggregator.poll.pipeline.poll_feed`).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from aggregator.config.schema import AppConfig
from aggregator.config.sources import SourceConfig
from aggregator.errors import AggregatorError
from aggregator.fetch.addresses import Provenance
from aggregator.fetch.fetcher import Fetcher
from aggregator.models import SourceRewrites
from aggregator.parse.sandbox import Parser


def explain_rewrites(
    config: AppConfig,
    sources: Iterable[SourceConfig],
    fetcher: Fetcher,
    parser: Parser,
    now: datetime,
) -> list[SourceRewrites]:
    """For each of ``sources`` that has rewrite rules, what they change in its feed now.

    A source that cannot be fetched or parsed gets its error instead; the others go on.
    """
    found = []
    for source in sources:
        rules = config.rewrite_for(source)
        if not rules:
            continue
        try:
            fetched = fetcher.fetch(
                source.url,
                provenance=Provenance.config(source.url),
                request=config.request_for(source),
            )
            changes = parser.explain_rewrite(
                fetched.content or b"", fetched.headers, fetched.final_url, now=now, rewrite=rules
            )
        except AggregatorError as error:
            found.append(SourceRewrites(source.name, rules, error=str(error)))
            continue
        found.append(SourceRewrites(source.name, rules, changes))
    return found
