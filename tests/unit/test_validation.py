"""Input rules (API.md "Limits"): names 1..100 characters, trimmed, no control characters; id lists."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from communities.domain import validation
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


# --- bounded integers -----------------------------------------------------------------------------------------------


def test_bounded_keeps_values_within_and_names_the_field():
    assert validation.bounded(0, "priority", 10) == 0
    assert validation.bounded(10, "priority", 10) == 10
    with pytest.raises(InvalidArgument) as exc:
        validation.bounded(11, "priority", 10)
    assert violation_of(exc).field == "priority"
    assert validation.bounded(-5, "delta", 10, minimum=-5) == -5
    with pytest.raises(InvalidArgument) as exc:
        validation.bounded(-1, "count", 10)
    assert violation_of(exc).field == "count"
    assert "at least 0" in violation_of(exc).description


# --- channel positions ----------------------------------------------------------------------------------------------


def test_position_bounds_are_the_non_negative_int32_range():
    assert validation.POSITION_MAX == 2**31 - 1
    for value in (0, 1, 2**31 - 1):
        assert validation.position(value) == value
    for value in (-1, -(2**31), 2**31):
        with pytest.raises(InvalidArgument) as exc:
            validation.position(value)
        assert violation_of(exc).field == "position"


@pytest.mark.parametrize(
    ("highest", "expected"),
    [(None, 0), (0, 1), (41, 42), (2**31 - 2, 2**31 - 1), (2**31 - 1, 2**31 - 1)],
)
def test_position_after_never_passes_the_maximum(highest, expected):
    assert validation.position_after(highest) == expected


@given(st.none() | st.integers(0, 2**31 - 1))
def test_position_after_property(highest):
    result = validation.position_after(highest)
    assert validation.position(result) == result
    assert result >= (0 if highest is None else highest)


# --- request timestamps ---------------------------------------------------------------------------------------------

SECONDS_MIN = -62_135_596_800  # 0001-01-01T00:00:00Z
SECONDS_MAX = 253_402_300_799  # 9999-12-31T23:59:59Z


@pytest.mark.parametrize(
    ("seconds", "nanos", "ms"),
    [
        (0, 0, 0),
        (1, 500_000_000, 1500),
        (0, 999_999, 0),
        (0, 1_000_000, 1),
        (SECONDS_MAX, 999_999_999, SECONDS_MAX * 1000 + 999),
        (SECONDS_MIN, 0, SECONDS_MIN * 1000),
        (-1, 999_999_999, -1),  # 1969-12-31T23:59:59.999999999Z: milliseconds toward the past
    ],
)
def test_timestamp_ms_in_range(seconds, nanos, ms):
    assert validation.timestamp_ms(seconds, nanos, "until") == ms


@pytest.mark.parametrize(
    ("seconds", "nanos"),
    [
        (SECONDS_MIN - 1, 0),
        (SECONDS_MAX + 1, 0),
        (-(2**63), 0),
        (2**63 - 1, 0),
        (0, -1),
        (0, 1_000_000_000),
        (SECONDS_MAX, -(2**31)),
        (SECONDS_MAX, 2**31 - 1),
    ],
)
def test_timestamp_ms_out_of_range_names_the_field(seconds, nanos):
    with pytest.raises(InvalidArgument) as exc:
        validation.timestamp_ms(seconds, nanos, "until")
    violation = violation_of(exc)
    assert violation.field == "until"
    assert violation.description


@given(st.integers(SECONDS_MIN, SECONDS_MAX), st.integers(0, 999_999_999))
def test_timestamp_ms_agrees_with_protobuf(seconds, nanos):
    from google.protobuf import timestamp_pb2

    expected = timestamp_pb2.Timestamp(seconds=seconds, nanos=nanos).ToMilliseconds()
    assert validation.timestamp_ms(seconds, nanos, "t") == expected
