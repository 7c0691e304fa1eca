"""ASGI middleware that keeps the app safe by default: a cap on request bodies, a Host
check against DNS rebinding, and headers that keep pages from loading anything foreign."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tf2torch.web.catalog import NotServed

Scope = dict[str, Any]
ASGIApp = Callable[..., Any]

SECURITY_HEADERS = [
    # pages load only their own CSS, script and images, and are framed by nobody
    (b"content-security-policy", b"default-src 'none'; img-src 'self'; style-src 'self'; "
     b"script-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-resource-policy", b"same-origin"),
]


class BodyTooLarge(NotServed):
    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the upload is larger than this server's limit of "
                              f"{limit / (1 << 20):.0f} MiB (tf2torch serve --max-upload-mb)")


class BodyLimit:
    """Refuse request bodies over `limit` bytes: at once when Content-Length says so, else
    as soon as the streamed body passes it (a chunked upload has no length up front)."""

    def __init__(self, app: ASGIApp, limit: int, refuse: Callable[[Scope, NotServed], Any]) -> None:
        self.app, self.limit, self.refuse = app, limit, refuse

    async def __call__(self, scope: Scope, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.limit):
            await self.refuse(scope, BodyTooLarge(self.limit))(scope, receive, send)
            return
        received = 0

        async def counted() -> dict:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    raise BodyTooLarge(self.limit)
            return message

        await self.app(scope, counted, send)


class HostCheck:
    """Answer only requests addressed to one of `hosts` (a page on another site cannot
    reach a loopback server by pointing its own domain name at 127.0.0.1)."""

    def __init__(self, app: ASGIApp, hosts: tuple[str, ...],
                 refuse: Callable[[Scope, NotServed], Any]) -> None:
        self.app, self.hosts, self.refuse = app, {h.lower() for h in hosts}, refuse

    async def __call__(self, scope: Scope, receive: Callable, send: Callable) -> None:
        if scope["type"] == "http":
            host = dict(scope["headers"]).get(b"host", b"").decode("latin-1").lower()
            name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
            if name not in self.hosts:
                refusal = NotServed(400, f"this server answers requests for "
                                         f"{', '.join(sorted(self.hosts))} only, not {host!r}")
                await self.refuse(scope, refusal)(scope, receive, send)
                return
        await self.app(scope, receive, send)


class SecurityHeaders:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: dict) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *SECURITY_HEADERS]
            await send(message)

        await self.app(scope, receive, with_headers)
