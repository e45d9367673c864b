"""Comments kept behind APIs: comment systems (Disqus, ...) and discussions of a post on other
sites (Hacker News, Reddit, ...). See :mod:`aggregator.discussions.base` for the interface,
:mod:`aggregator.discussions.follower` for how threads are found, read and stored."""

from aggregator.discussions.follower import DiscussionFollower

__all__ = ["DiscussionFollower"]
