"""Full text after a poll or a push: the articles of the source's new entries (``full_text``).

The poll's step that hands the source's due entries to the
:class:`~aggregator.fulltext.reader.FullTextReader` (fetch each page, extract in the sandbox,
store), with the poll's connection, fetcher and the source's request options. Never fails the
poll: a page that fails is the reader's warning line and its retry.
"""

from __future__ import annotations

from dataclasses import replace

from aggregator.config.sources import SourceConfig
from aggregator.fulltext.reader import FullTextReader
from aggregator.models import PollResult, SourceState
from aggregator.poll.pipeline import PollTools


def read_full_texts(
    reader: FullTextReader,
    tools: PollTools,
    source: SourceConfig,
    state: SourceState,
    result: PollResult,
) -> PollResult:
    """Fetch the articles of the source's new entries when it asks for full text; ``result``
    with the count of articles stored."""
    mode = tools.config.full_text_for(source)
    if mode is False:
        return result
    run = reader.read(
        source,
        state.id,
        mode,
        storage=tools.storage,
        fetcher=tools.fetcher,
        request=tools.config.request_for(source),
    )
    return replace(result, full_texts=run.stored) if run.stored else result
