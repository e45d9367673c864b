"""The WebSub callback (issue 17, item 8): ``GET /websub/{id}`` answers a hub's verification
of intent, ``POST /websub/{id}`` receives pushed content.

HTTP only: what is answered and stored is the receiver's (:class:`aggregator.poll.subscriber.
Subscriber`), run on starlette's thread pool since it uses the database and the parse sandbox.
A pushed body is hostile input: it is read up to ``defaults.max_body_size`` and no further
(413 past it, nothing stored). The routes exist only where a daemon subscribes.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Protocol

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from aggregator.config.schema import AppConfig

_CALLBACK_ID = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
_NO_STORE = {"Cache-Control": "no-store"}


class Verified(Protocol):
    """What a verification answer carries for the HTTP side."""

    @property
    def status(self) -> int: ...

    @property
    def body(self) -> str: ...


class WebSubReceiver(Protocol):
    """The subscriber behind the callback (:class:`aggregator.poll.subscriber.Subscriber`)."""

    def verify(self, callback_id: str, params: Mapping[str, str]) -> Verified: ...

    def receive(self, callback_id: str, body: bytes, headers: Mapping[str, str]) -> int: ...


class _TooLarge(Exception):
    pass


def websub_routes(receiver: WebSubReceiver, config: Callable[[], AppConfig]) -> list[Route]:
    """The callback routes for ``receiver``."""

    async def verify(request: Request) -> Response:
        callback_id = request.path_params["callback_id"]
        if not _CALLBACK_ID.match(callback_id):
            return PlainTextResponse("Unknown subscription.\n", status_code=404)
        params = {key: value for key, value in request.query_params.items()}
        answer = await run_in_threadpool(receiver.verify, callback_id, params)
        return PlainTextResponse(answer.body, status_code=answer.status, headers=_NO_STORE)

    async def push(request: Request) -> Response:
        callback_id = request.path_params["callback_id"]
        if not _CALLBACK_ID.match(callback_id):
            return PlainTextResponse("Unknown subscription.\n", status_code=404)
        limit = config().defaults.max_body_size
        try:
            body = await _read_body(request, limit)
        except _TooLarge:
            return PlainTextResponse(
                f"The body is over {limit} bytes.\n", status_code=413, headers=_NO_STORE
            )
        headers = dict(request.headers.items())
        status = await run_in_threadpool(receiver.receive, callback_id, body, headers)
        text = {200: "Stored.\n", 202: "Accepted.\n"}.get(status, "Unknown subscription.\n")
        return PlainTextResponse(text, status_code=status, headers=_NO_STORE)

    return [
        Route("/websub/{callback_id}", verify, methods=["GET"]),
        Route("/websub/{callback_id}", push, methods=["POST"]),
    ]


async def _read_body(request: Request, limit: int) -> bytes:
    """The request body, or :class:`_TooLarge` as soon as it passes ``limit`` bytes."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise _TooLarge
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _TooLarge
        chunks.append(chunk)
    return b"".join(chunks)
