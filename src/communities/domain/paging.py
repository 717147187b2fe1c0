"""Opaque page tokens: the sort key of the last item of the previous page, versioned and encoded so that
clients pass them back rather than build them."""

from __future__ import annotations

import base64
import binascii

from communities.domain.errors import InvalidArgument

_PREFIX = "p1:"


def encode(*key: int | str) -> str:
    text = _PREFIX + ":".join(str(part) for part in key)
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def decode_parts(token: str, count: int, field: str = "page_token") -> list[str] | None:
    """The key parts (as strings), or None for the first page (empty token)."""
    if not token:
        return None
    try:
        text = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        text = ""
    parts = text[len(_PREFIX) :].split(":") if text.startswith(_PREFIX) else []
    if len(parts) != count or not all(parts):
        raise InvalidArgument.field(field, "not a page token from this server")
    return parts


def decode(token: str, field: str = "page_token") -> int | None:
    """A token whose key is one id (members, bans)."""
    parts = decode_parts(token, 1, field)
    if parts is None:
        return None
    if not parts[0].isdigit() or int(parts[0]) >= 1 << 64:
        raise InvalidArgument.field(field, "not a page token from this server")
    return int(parts[0])
