"""The console's HTTP application (ASGI): the built page, the sign-in exchange, and the Connect bridge.

    GET  /, /index.html, /assets/...        the static files under static/ (index.html: no-cache; assets: immutable)
    POST /console/login {"code": "..."}     a one-time login code -> a token of its user (web/login.py)
    POST /communities.v1.<Service>/<Method> the Connect protocol, forwarded to the gRPC API (web/bridge.py)

Same origin only (no CORS headers); every answer carries a strict Content-Security-Policy, nosniff and
no-referrer.
"""

from __future__ import annotations

import hashlib
import json
import logging
import mimetypes
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources

from communities.services.context import App
from communities.web import login
from communities.web.bridge import Bridge

log = logging.getLogger("communities.web")

LOGIN_PATH = "/console/login"
LOGIN_MAX_BYTES = 4096
SECURITY_HEADERS = [
    (
        b"content-security-policy",
        b"default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
        b"connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
        b"frame-ancestors 'none'",
    ),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
]
ACCEPT_POST = b"application/json, application/proto, application/connect+json, application/connect+proto"
# Where Python's own table differs between versions or lacks the type (nosniff makes browsers strict about it).
CONTENT_TYPES = {"js": "text/javascript", "mjs": "text/javascript", "map": "application/json", "woff2": "font/woff2"}
NO_CACHE = b"no-cache"
IMMUTABLE = b"public, max-age=31536000, immutable"

Scope = dict
Receive = Callable[[], Awaitable[dict]]
Send = Callable[[dict], Awaitable[None]]


@dataclass(frozen=True)
class StaticFile:
    body: bytes
    content_type: bytes
    etag: bytes
    cache_control: bytes


def load_static(package: str = "communities.web", folder: str = "static") -> dict[str, StaticFile]:
    """Every file under the package's static folder, by URL path; index.html also at `/`. Read once at start:
    the files are few and small, and change only with a new release."""
    files: dict[str, StaticFile] = {}
    root = resources.files(package).joinpath(folder)

    def walk(node, prefix: str) -> None:
        for child in node.iterdir():
            path = f"{prefix}/{child.name}"
            if child.is_dir():
                walk(child, path)
                continue
            body = child.read_bytes()
            suffix = child.name.rsplit(".", 1)[-1].lower()
            content_type = (
                CONTENT_TYPES.get(suffix) or mimetypes.guess_type(child.name)[0] or "application/octet-stream"
            )
            if content_type.startswith("text/") or content_type in ("application/json", "image/svg+xml"):
                content_type += "; charset=utf-8"
            files[path] = StaticFile(
                body=body,
                content_type=content_type.encode(),
                etag=f'"{hashlib.sha256(body).hexdigest()[:32]}"'.encode(),
                # Built assets have content hashes in their names: they never change under the same name.
                cache_control=IMMUTABLE if path.startswith("/assets/") else NO_CACHE,
            )

    if root.is_dir():
        walk(root, "")
    if "/index.html" in files:
        files["/"] = files["/index.html"]
    return files


class ConsoleApp:
    def __init__(self, app: App, bridge: Bridge, static: dict[str, StaticFile] | None = None):
        self.app = app
        self.bridge = bridge
        self.static = load_static() if static is None else static

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return  # no lifespan or websockets here (the server runs with lifespan off)

        async def secure_send(message: dict) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", ()), *SECURITY_HEADERS]}
            await send(message)

        path = scope["path"]
        if path.startswith("/communities."):
            content_type = _header(scope, b"content-type") or b""
            if content_type.startswith(b"application/grpc") and not content_type.startswith(b"application/grpc-web"):
                # gRPC proper needs HTTP/2 trailers: it has its own port.
                await _plain(secure_send, 415, b"gRPC clients: use the gRPC port", [(b"accept-post", ACCEPT_POST)])
                return
            await self.bridge(scope, receive, secure_send)
        elif path == LOGIN_PATH:
            await self._login(scope, receive, secure_send)
        else:
            await self._static(scope, secure_send)

    # ------------------------------------------------------------------------------------------ static files

    async def _static(self, scope: Scope, send: Send) -> None:
        method = scope["method"]
        found = self.static.get(scope["path"])
        if found is None:
            await _plain(send, 404, b"not found")
            return
        if method not in ("GET", "HEAD"):
            await _plain(send, 405, b"method not allowed", [(b"allow", b"GET, HEAD")])
            return
        headers = [(b"etag", found.etag), (b"cache-control", found.cache_control)]
        if _header(scope, b"if-none-match") == found.etag:
            await send({"type": "http.response.start", "status": 304, "headers": headers})
            await send({"type": "http.response.body", "body": b""})
            return
        headers += [(b"content-type", found.content_type), (b"content-length", str(len(found.body)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"" if method == "HEAD" else found.body})

    # ---------------------------------------------------------------------------------------------- sign-in

    async def _login(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["method"] != "POST":
            await _json(send, 405, _error("unimplemented", "use POST"), [(b"allow", b"POST")])
            return
        content_type = (_header(scope, b"content-type") or b"").split(b";")[0].strip().lower()
        if content_type != b"application/json":
            await _json(send, 415, _error("invalid_argument", "send the code as JSON (Content-Type: application/json)"))
            return
        body = await _read_body(receive, LOGIN_MAX_BYTES)
        if body is None:
            await _json(send, 413, _error("invalid_argument", f"the body must be at most {LOGIN_MAX_BYTES} bytes"))
            return
        try:
            request = json.loads(body)
        except ValueError:
            request = None
        code = request.get("code") if isinstance(request, dict) else None
        if not isinstance(code, str) or not code:
            await _json(send, 400, _error("invalid_argument", 'expected {"code": "<the login code>"}'))
            return
        try:
            session = await login.redeem(self.app, code)
        except Exception:
            log.exception("console sign-in failed")
            await _json(send, 503, _error("unavailable", "signing in failed on the server's side; try again"))
            return
        if session is None:
            await _json(send, 401, _error("unauthenticated", "this login link was already used or has expired"))
            return
        log.info("console sign-in with a login link: %s:%d", "bot" if session.user.bot else "user", session.user.id)
        expires = datetime.fromtimestamp(session.expires_ms / 1000, UTC).isoformat(timespec="milliseconds")
        await _json(
            send,
            200,
            {
                "token": session.token,
                "user_id": str(session.user.id),
                "name": session.user.name,
                "bot": session.user.bot,
                "expires_at": expires.replace("+00:00", "Z"),
            },
        )


def _error(code: str, message: str) -> dict:
    return {"code": code, "message": message}


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return value
    return None


async def _read_body(receive: Receive, limit: int) -> bytes | None:
    """The request body, or None when it is longer than `limit` (reading stops there)."""
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return b""
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


async def _json(send: Send, status: int, body: dict, headers: list | None = None) -> None:
    data = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(data)).encode()),
                (b"cache-control", b"no-store"),
                *(headers or []),
            ],
        }
    )
    await send({"type": "http.response.body", "body": data})


async def _plain(send: Send, status: int, text: bytes, headers: list | None = None) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"content-length", str(len(text)).encode()),
                *(headers or []),
            ],
        }
    )
    await send({"type": "http.response.body", "body": text})
