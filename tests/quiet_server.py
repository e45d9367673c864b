"""A thread HTTP server for tests that stays quiet when a client hangs up early."""

from __future__ import annotations

import sys
from http.server import ThreadingHTTPServer
from typing import Any


class QuietServer(ThreadingHTTPServer):
    """Tests of size limits and timeouts hang up on purpose; the default handler would print a
    traceback that lands in another test's captured stderr."""

    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)
