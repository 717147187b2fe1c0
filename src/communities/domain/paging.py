"""Opaque page tokens: the last id of the previous page, versioned and encoded so clients don't build them."""

from __future__ import annotations

import base64
import binascii

from communities.domain.errors import InvalidArgument

_PREFIX = "p1:"


def encode(last_id: int) -> str:
    return base64.urlsafe_b64encode(f"{_PREFIX}{last_id}".encode()).decode().rstrip("=")


def decode(token: str, field: str = "page_token") -> int | None:
    """None for the first page (empty token)."""
    if not token:
        return None
    try:
        text = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        text = ""
    if not text.startswith(_PREFIX) or not text[len(_PREFIX) :].isdigit():
        raise InvalidArgument.field(field, "not a page token from this server")
    value = int(text[len(_PREFIX) :])
    if value >= 1 << 64:
        raise InvalidArgument.field(field, "not a page token from this server")
    return value
