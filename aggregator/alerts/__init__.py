"""Alerts (issue 15, item 5): the ``notify:`` items, told of new comments and entries.

- :mod:`.conditions` (pure): which new items an alert reports;
- :mod:`.payload` (pure): the JSON payload, the text for Apprise, the HMAC signature;
- :mod:`.targets`: sending to a webhook (through :mod:`aggregator.fetch.transport`, with retries,
  backoff and a timeout) or to an Apprise URL (Apprise's only adapter);
- :mod:`.dispatcher`: :class:`AlertDispatcher`, one background worker thread per alert, so a
  slow or failing target never slows polling; high-water marks in the database
  (``alert_marks``) so nothing is sent twice, across restarts too.

Not to be confused with :mod:`aggregator.run.sdnotify`, systemd's readiness datagram.
"""

from aggregator.alerts.dispatcher import AlertDispatcher, send_test

__all__ = ["AlertDispatcher", "send_test"]
