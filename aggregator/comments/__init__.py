"""Follow each entry's comment thread: per-entry comment feeds, a site-wide comment feed, or
the entry's HTML page, in that order of preference (see the README, "Comments").

This package fetches and stores; *when* a thread is polled next, and whether a feed skipped
comments, are decided by :mod:`aggregator.schedule.threads`. One failing thread is logged and recorded on
its entry; it never stops the others or the source's own poll.

* :mod:`~aggregator.comments.follower`: :class:`CommentFollower`, which threads are due, the
  site-wide feed, storing each read (one transaction per thread) and its next read time.
* :mod:`~aggregator.comments.reader`: reading one thread (its comment feed and that feed's pages,
  or the post's page), in worker threads that never touch the database.
* :mod:`~aggregator.comments.matching`: matching a site-wide feed's comments to entries (pure).
"""
