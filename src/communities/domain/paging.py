"""Opaque page tokens: the sort key of the last item of the previous page, versioned and encoded so that
clients pass them back rather than build them."""

from __future__ import annotations

import base64
import binascii

from communities.domain.errors import InvalidArgument

_PREFIX = "p1:"
# Every number this server writes into a token is the value of a BIGINT column (an id, a time in milliseconds, a
# stream position), so a part of digits beyond it was not written here; rejecting it also keeps the value out of
# queries, where it would overflow the column. (Bounded by length first: int() of thousands of digits is slow,
# and refused past 4300.)
_MAX_NUMBER = (1 << 63) - 1
_MAX_DIGITS = len(str(_MAX_NUMBER))


def encode(*key: int | str) -> str:
    text = _PREFIX + ":".join(str(part) for part in key)
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def decode_parts(token: str, count: int, field: str = "page_token") -> list[str] | None:
    """The key parts (as strings), or None for the first page (empty token). INVALID_ARGUMENT for anything this
    server did not write: not base64 of ASCII text, another version, another number of parts, an empty part, or a
    number past a BIGINT."""
    if not token:
        return None
    try:
        text = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        text = ""
    # Tokens are ASCII: str.isdigit() would also accept superscripts ('²') and digits of other scripts, which int()
    # refuses or reads as other numbers.
    parts = text[len(_PREFIX) :].split(":") if text.isascii() and text.startswith(_PREFIX) else []
    if len(parts) != count or not all(parts) or not all(_fits(part) for part in parts):
        raise InvalidArgument.field(field, "not a page token from this server")
    return parts


def _fits(part: str) -> bool:
    """False for a number no token of this server holds."""
    return not part.isdigit() or (len(part) <= _MAX_DIGITS and int(part) <= _MAX_NUMBER)


def decode(token: str, field: str = "page_token") -> int | None:
    """A token whose key is one id (members, bans)."""
    parts = decode_parts(token, 1, field)
    if parts is None:
        return None
    if not parts[0].isdigit():
        raise InvalidArgument.field(field, "not a page token from this server")
    return int(parts[0])
