"""Input rules shared by every service: names, ids and limits from API.md."""

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


def bounded(value: int, field: str, maximum: int) -> int:
    if value > maximum:
        raise InvalidArgument.field(field, f"must be at most {maximum}, got {value}")
    return value


def nickname(value: str) -> str | None:
    """'' clears the nickname; otherwise 1..32 characters after trimming."""
    if value == "":
        return None
    return clean_name(value, "nickname", NICKNAME_MAX)


def reason(value: str | None) -> str:
    if value is None:
        return ""
    value = value.strip()
    if len(value) > REASON_MAX:
        raise InvalidArgument.field("reason", f"must be at most {REASON_MAX} characters, got {len(value)}")
    return value


def page_size(value: int) -> int:
    if value == 0:
        return PAGE_SIZE_DEFAULT
    return bounded(value, "page_size", PAGE_SIZE_MAX)
