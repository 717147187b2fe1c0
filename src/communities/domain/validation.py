"""Input rules shared by every service: names, ids and limits from API.md.

Every integer a request can set has a bound here (or in its service, next to the limit it guards), checked
before anything is stored: a value the API's own types cannot carry back out (an int32 position past 2**31-1,
a Timestamp past 9999) must never reach the database. tests/api/test_hardening_inputs.py walks every request
message and fails for a new integer or Timestamp field until its bound is decided."""

from __future__ import annotations

import unicodedata

from communities.domain.errors import InvalidArgument

NAME_MAX = 100
COMMUNITIES_PER_USER = 100
ROLES_PER_COMMUNITY = 250
CHANNELS_PER_COMMUNITY = 500
NICKNAME_MAX = 32
REASON_MAX = 512
ROLE_PRIORITY_MAX = 1_000_000
COLOR_MAX = 0xFFFFFF
PAGE_SIZE_DEFAULT = 100
PAGE_SIZE_MAX = 1000
MAX_IDS_PER_LOOKUP = 100
# Channel positions: the non-negative int32 range (Channel.position is an int32).
POSITION_MAX = 2**31 - 1
# google.protobuf.Timestamp's valid range: 0001-01-01T00:00:00Z .. 9999-12-31T23:59:59.999999999Z.
TIMESTAMP_SECONDS_MIN = -62_135_596_800
TIMESTAMP_SECONDS_MAX = 253_402_300_799
NANOS_MAX = 999_999_999


def clean_name(value: str, field: str = "name", maximum: int = NAME_MAX) -> str:
    """Trim, then require 1..maximum characters and no control characters (Cc) or line/paragraph separators."""
    name = value.strip()
    if not name:
        raise InvalidArgument.field(field, "must not be empty")
    if len(name) > maximum:
        raise InvalidArgument.field(field, f"must be at most {maximum} characters, got {len(name)}")
    for char in name:
        if unicodedata.category(char) in ("Cc", "Zl", "Zp"):
            raise InvalidArgument.field(field, f"must not contain control characters (U+{ord(char):04X})")
    return name


def require_id(value: int, field: str) -> int:
    if value == 0:
        raise InvalidArgument.field(field, "is required")
    return value


def id_list(values: list[int], field: str, maximum: int = MAX_IDS_PER_LOOKUP) -> list[int]:
    """Deduplicate, keep order, and cap the length."""
    if len(values) > maximum:
        raise InvalidArgument.field(field, f"at most {maximum} ids, got {len(values)}")
    return list(dict.fromkeys(values))


def permission_mask(value: int, field: str) -> int:
    from communities.domain.permissions import unknown_bits

    extra = unknown_bits(value)
    if extra:
        raise InvalidArgument.field(field, f"unknown permission bits {extra:#x}")
    return value


def bounded(value: int, field: str, maximum: int, minimum: int = 0) -> int:
    """value within minimum..maximum, or INVALID_ARGUMENT naming the field."""
    if value > maximum:
        raise InvalidArgument.field(field, f"must be at most {maximum}, got {value}")
    if value < minimum:
        raise InvalidArgument.field(field, f"must be at least {minimum}, got {value}")
    return value


def position(value: int, field: str = "position") -> int:
    """A channel position: 0..POSITION_MAX."""
    return bounded(value, field, POSITION_MAX)


def position_after(highest: int | None) -> int:
    """Where a channel created without a position goes: one after its highest sibling (0 without siblings), but
    never past POSITION_MAX. When a sibling is already there the new channel shares the position; channels sort
    by (position, id), and a new channel's id is the highest, so it still comes after its siblings."""
    if highest is None:
        return 0
    return min(highest + 1, POSITION_MAX)


def timestamp_ms(seconds: int, nanos: int, field: str) -> int:
    """A google.protobuf.Timestamp of a request (its seconds and nanos) as Unix milliseconds, finer parts dropped
    toward the past (as Timestamp.ToMilliseconds does); INVALID_ARGUMENT naming the field when it is outside the
    Timestamp's valid range. Every Timestamp a request carries goes through here (api/convert.request_time_ms)."""
    if not TIMESTAMP_SECONDS_MIN <= seconds <= TIMESTAMP_SECONDS_MAX:
        raise InvalidArgument.field(
            field,
            "must be between 0001-01-01T00:00:00Z and 9999-12-31T23:59:59.999999999Z "
            f"(seconds {TIMESTAMP_SECONDS_MIN}..{TIMESTAMP_SECONDS_MAX}), got seconds {seconds}",
        )
    if not 0 <= nanos <= NANOS_MAX:
        raise InvalidArgument.field(field, f"nanos must be within 0..{NANOS_MAX}, got {nanos}")
    return seconds * 1000 + nanos // 1_000_000


def nickname(value: str) -> str | None:
    """'' clears the nickname; otherwise 1..32 characters after trimming."""
    if value == "":
        return None
    return clean_name(value, "nickname", NICKNAME_MAX)


def no_nul(value: str, field: str) -> str:
    """Free text may hold any character but NUL, which PostgreSQL cannot store (refused on both databases)."""
    if "\x00" in value:
        raise InvalidArgument.field(field, "must not contain NUL (U+0000)")
    return value


def reason(value: str | None, field: str = "reason") -> str:
    if value is None:
        return ""
    value = no_nul(value.strip(), field)
    if len(value) > REASON_MAX:
        raise InvalidArgument.field(field, f"must be at most {REASON_MAX} characters, got {len(value)}")
    return value


def page_size(value: int) -> int:
    if value == 0:
        return PAGE_SIZE_DEFAULT
    return bounded(value, "page_size", PAGE_SIZE_MAX)
