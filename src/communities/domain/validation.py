"""Input rules shared by every service: names, ids and limits from API.md."""

from __future__ import annotations

import unicodedata

from communities.domain.errors import InvalidArgument

NAME_MAX = 100
COMMUNITIES_PER_USER = 100
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
