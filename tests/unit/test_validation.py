"""Input rules (API.md "Limits"): names 1..100 characters, trimmed, no control characters; id lists."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from communities.domain.errors import DomainError, FieldViolation, InvalidArgument
from communities.domain.validation import MAX_IDS_PER_LOOKUP, NAME_MAX, clean_name, id_list, require_id

FAMILY = "\U0001f468\u200d\U0001f469\u200d\U0001f467"  # man ZWJ woman ZWJ girl
TECHNOLOGIST = "\U0001f469\u200d\U0001f4bb"  # woman ZWJ laptop


def violation_of(exc: pytest.ExceptionInfo[InvalidArgument]) -> FieldViolation:
    error = exc.value
    assert isinstance(error, DomainError)
    assert error.reason == "INVALID_ARGUMENT"
    assert len(error.violations) == 1
    return error.violations[0]


def test_name_max_is_100():
    assert NAME_MAX == 100


# --- clean_name: accepted -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("general", "general"),
        ("  general  ", "general"),
        ("\tgeneral\n", "general"),
        ("\u3000general\u00a0", "general"),
        ("my  cool   community", "my  cool   community"),  # inner spaces are kept
        ("x", "x"),
        ("Café Ünïcödé 日本語", "Café Ünïcödé 日本語"),
        (FAMILY, FAMILY),
        (f"{TECHNOLOGIST} devs {FAMILY}", f"{TECHNOLOGIST} devs {FAMILY}"),
        ("\u05e9\u05dc\u05d5\u05dd", "\u05e9\u05dc\u05d5\u05dd"),
    ],
)
def test_clean_name_accepts_and_trims(raw, clean):
    assert clean_name(raw) == clean


def test_exactly_100_characters_accepted():
    assert clean_name("a" * 100) == "a" * 100


def test_100_characters_after_trimming_accepted():
    assert clean_name("   " + "b" * 100 + "\n ") == "b" * 100


def test_zwj_emoji_is_accepted_whole():
    assert clean_name(f"  {FAMILY}  ") == FAMILY
    assert "\u200d" in clean_name(FAMILY)


# --- clean_name: rejected -----------------------------------------------------------------------------------------


def test_101_characters_rejected():
    with pytest.raises(InvalidArgument) as exc:
        clean_name("a" * 101)
    assert violation_of(exc).field == "name"


@pytest.mark.parametrize("raw", ["", " ", "    ", "\t\n", "\u3000", "\u2028"])
def test_empty_after_trim_rejected(raw):
    with pytest.raises(InvalidArgument) as exc:
        clean_name(raw)
    assert violation_of(exc).field == "name"


@pytest.mark.parametrize(
    "char",
    ["\x00", "\n", "\t", "\r", "\x07", "\x1b", "\x7f", "\x85", "\x9f", "\u2028", "\u2029"],
    ids=lambda c: f"U+{ord(c):04X}",
)
def test_control_characters_inside_rejected(char):
    with pytest.raises(InvalidArgument) as exc:
        clean_name(f"bad{char}name")
    assert violation_of(exc).field == "name"


def test_nul_at_the_edge_is_not_trimmed_away():
    with pytest.raises(InvalidArgument):
        clean_name("\x00name")
    with pytest.raises(InvalidArgument):
        clean_name("name\x00")


def test_field_name_is_reported():
    with pytest.raises(InvalidArgument) as exc:
        clean_name("a\x00b", field="channel.name")
    violation = violation_of(exc)
    assert violation.field == "channel.name"
    assert violation.description
    assert "channel.name" in str(exc.value)


def test_custom_maximum():
    assert clean_name("n" * 32, field="nickname", maximum=32) == "n" * 32
    with pytest.raises(InvalidArgument) as exc:
        clean_name("n" * 33, field="nickname", maximum=32)
    assert violation_of(exc).field == "nickname"


def _is_control(char: str) -> bool:
    return unicodedata.category(char) in ("Cc", "Zl", "Zp")


@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=120))
def test_clean_name_property(raw):
    trimmed = raw.strip()
    should_pass = 1 <= len(trimmed) <= 100 and not any(_is_control(c) for c in trimmed)
    if should_pass:
        assert clean_name(raw) == trimmed
    else:
        with pytest.raises(InvalidArgument) as exc:
            clean_name(raw, field="f")
        assert violation_of(exc).field == "f"


# --- ids ------------------------------------------------------------------------------------------------------------


def test_id_list_dedupes_keeping_first_occurrence_order():
    assert id_list([3, 1, 3, 2, 1, 5, 2], "ids") == [3, 1, 2, 5]
    assert id_list([], "ids") == []
    assert id_list([9], "ids") == [9]


def test_id_list_cap():
    assert MAX_IDS_PER_LOOKUP == 100
    ids = list(range(1, 101))
    assert id_list(ids, "member_ids") == ids
    with pytest.raises(InvalidArgument) as exc:
        id_list(list(range(1, 102)), "member_ids")
    assert violation_of(exc).field == "member_ids"


def test_id_list_custom_maximum():
    assert id_list([1, 2, 3], "role_ids", maximum=3) == [1, 2, 3]
    with pytest.raises(InvalidArgument) as exc:
        id_list([1, 2, 3, 4], "role_ids", maximum=3)
    assert violation_of(exc).field == "role_ids"


@given(st.lists(st.integers(1, 20), max_size=100))
def test_id_list_property(values):
    result = id_list(values, "ids")
    assert len(result) == len(set(result)) == len(set(values))
    assert set(result) == set(values)
    assert result == sorted(set(values), key=values.index)


def test_require_id():
    assert require_id(12345, "community_id") == 12345
    with pytest.raises(InvalidArgument) as exc:
        require_id(0, "community_id")
    assert violation_of(exc).field == "community_id"
