"""domain/target_users.py: parsing a target users file (and writing one back)."""

from __future__ import annotations

import csv
import io

import pytest

from communities.domain import target_users
from communities.domain.target_users import MAX_REPORTED_ERRORS, parse, to_csv

MAX_ID = 2**64 - 1


def ids_of(data: bytes) -> list[int]:
    parsed = parse(data)
    assert parsed.ok, parsed.errors
    assert parsed.error_count == 0 and parsed.errors == []
    return list(parsed.user_ids)


def bad_lines(data: bytes) -> list[int]:
    parsed = parse(data)
    assert not parsed.ok
    assert len(parsed.user_ids) == 0, "a rejected file yields no ids"
    for number, message in parsed.errors:
        assert message == f"Line {number}: invalid user ID"
    return [number for number, _ in parsed.errors]


# --------------------------------------------------------------------------------------------- tolerated


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"5\n3\n4", [3, 4, 5]),
        (b"5\n3\n4\n", [3, 4, 5]),
        (b"user_id\n5\n3", [3, 5]),
        (b"user_id\r\n5\r\n3\r\n", [3, 5]),
        (b"\xef\xbb\xbf5\n3", [3, 5]),
        (b"\xef\xbb\xbfuser_id\r\n5\r\n3", [3, 5]),
        (b"\n\n\nuser_id\n\n5\n\n\n3\n\n", [3, 5]),
        (b"  user_id \n  5  \n\t3\t\n 7\r\n", [3, 5, 7]),
        (b"\r\n \r\n\t\r\n9\r\n", [9]),
        (b"1\n1\n1\n2\n2\n1", [1, 2]),
        (b"18446744073709551615\n9223372036854775808\n9223372036854775807", [2**63 - 1, 2**63, MAX_ID]),
        (b"1", [1]),
    ],
    ids=[
        "plain",
        "final-newline",
        "header",
        "header-crlf",
        "bom",
        "bom-header-crlf",
        "blank-lines-before-header",
        "spaces-and-tabs",
        "whitespace-only-lines",
        "duplicates",
        "64-bit-edges",
        "single",
    ],
)
def test_tolerated_files(data, expected):
    assert ids_of(data) == expected


def test_ids_are_distinct_and_ascending():
    data = b"\n".join(b"%d" % n for n in [9, 2, 7, 2, 9, 1, 10**18, 3, 3, 3])
    parsed = parse(data)
    assert list(parsed.user_ids) == [1, 2, 3, 7, 9, 10**18]
    assert parsed.user_ids.typecode == "Q"


def test_empty_and_blank_files_have_no_ids():
    for data in (b"", b"\n\n", b"user_id\n", b"\xef\xbb\xbf", b"\xef\xbb\xbfuser_id\r\n\r\n"):
        parsed = parse(data)
        assert parsed.ok and len(parsed.user_ids) == 0, data


# ----------------------------------------------------------------------------------------------- errors

BAD = [
    b"abc",
    b"12a",
    b"a12",
    b"-5",
    b"+5",
    b"0",
    b"00",
    str(2**64).encode(),
    b"99999999999999999999",
    b"100000000000000000000",
    b"1" * 40,
    b"1,2",
    b"1,",
    b",1",
    b"1;2",
    b"1.5",
    b"1.0",
    b"1e5",
    b"0x10",
    b'""',
    b'"',
    b"''",
    b"1 2",
    b"user_id,name",
    b"id",
    b"\x00",
    b"\xff\xfe\xfd",
    "\uff11\uff12".encode(),  # fullwidth digits
    "\u0661\u0662".encode(),  # Arabic-Indic digits
    "\u00b2".encode(),  # superscript two
]


@pytest.mark.parametrize("bad", BAD, ids=[repr(b)[2:-1][:24] for b in BAD])
def test_malformed_line(bad):
    data = b"user_id\n11\n" + bad + b"\n12\n"
    assert bad_lines(data) == [3]
    parsed = parse(data)
    assert parsed.error_count == 1


def test_header_only_counts_on_the_first_non_blank_line():
    assert bad_lines(b"11\nuser_id\n12") == [2]
    assert bad_lines(b"user_id\nuser_id\n12") == [2]
    assert bad_lines(b"\xef\xbb\xbf11\r\nuser_id\r\n") == [2]
    # A BOM anywhere but the start is not tolerated.
    assert bad_lines(b"11\n\xef\xbb\xbf12\n") == [2]


def test_line_numbers_are_one_based_physical_lines():
    data = b"\xef\xbb\xbfuser_id\r\n\r\nx\r\n5\r\n\r\n\r\n-1\n\n1,2"
    assert bad_lines(data) == [3, 7, 9]
    assert bad_lines(b"x") == [1]
    assert bad_lines(b"\n\n\nx\n") == [4]


def test_every_bad_line_is_reported_up_to_100_but_all_are_counted():
    lines = [b"%d" % (n + 1) if n % 3 else b"bad%d" % n for n in range(600)]  # lines 1, 4, 7, ... are bad
    parsed = parse(b"\n".join(lines))
    assert parsed.error_count == 200
    assert len(parsed.errors) == MAX_REPORTED_ERRORS == 100
    assert [number for number, _ in parsed.errors] == list(range(1, 300, 3))
    assert parsed.errors[0] == (1, "Line 1: invalid user ID")
    assert parsed.errors[-1] == (298, "Line 298: invalid user ID")
    assert not parsed.ok and len(parsed.user_ids) == 0


def test_exactly_100_bad_lines():
    parsed = parse(b"\n".join([b"x"] * 100))
    assert parsed.error_count == 100 and len(parsed.errors) == 100
    parsed = parse(b"\n".join([b"x"] * 101))
    assert parsed.error_count == 101 and len(parsed.errors) == 100


# ---------------------------------------------------------------------------------------------- to_csv


def test_to_csv_format():
    assert to_csv([]) == b"user_id\n"
    assert to_csv([3, 1, MAX_ID]) == b"user_id\n3\n1\n18446744073709551615\n"


@pytest.mark.parametrize(
    "ids",
    [[1], [5, 3, 1], [MAX_ID, 2**63, 2**63 - 1, 1], list(range(1, 2000, 7))],
    ids=["one", "three", "edges", "many"],
)
def test_round_trip(ids):
    data = to_csv(ids)
    assert list(parse(data).user_ids) == sorted(set(ids))
    # It is ordinary CSV too.
    rows = list(csv.reader(io.StringIO(data.decode())))
    assert rows[0] == ["user_id"] and [int(r[0]) for r in rows[1:]] == ids
    # And parsing the export of a parse gives the same ids.
    assert list(parse(to_csv(parse(data).user_ids)).user_ids) == sorted(set(ids))


def test_a_million_lines():
    count = target_users.MAX_TARGET_USERS
    base = 10**17
    data = b"\xef\xbb\xbfuser_id\r\n" + "\r\n".join(str(base + (n * 7919) % count) for n in range(count)).encode()
    parsed = parse(data)
    assert parsed.ok
    assert len(parsed.user_ids) == count
    assert parsed.user_ids[0] == base and parsed.user_ids[-1] == base + count - 1
