"""What status a request ended with, for the access log and the request metrics.

A request whose application ends without starting a response was a server
error (500), unless the client had gone away first (a proxy's health check
giving up, a student closing the tab): that is 499, the client closing the
request, as proxies log it. Counted as 500, every such request would look
like a failure of ours and set off the alert on server errors.
"""

from __future__ import annotations

from litestar.types import Message, Receive, ReceiveMessage, Send

__all__ = ["CLIENT_CLOSED", "RequestOutcome"]

#: The client went away before any response started.
CLIENT_CLOSED = 499


class RequestOutcome:
    """Wraps one request's ``receive`` and ``send`` and tells how it ended."""

    def __init__(self, receive: Receive, send: Send) -> None:
        self._receive = receive
        self._send = send
        self.started: int | None = None
        self.disconnected = False
        self.cancelled = False

    async def receive(self) -> ReceiveMessage:
        message = await self._receive()
        if message["type"] == "http.disconnect":
            self.disconnected = True
        return message

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.started = message["status"]
        await self._send(message)

    @property
    def status(self) -> int:
        if self.started is not None:
            return self.started
        return CLIENT_CLOSED if self.disconnected or self.cancelled else 500
