"""Parsing a target users file: CSV bytes with one column of user ids.

Tolerated: a UTF-8 BOM, an optional `user_id` header (first non-blank line), blank lines, CRLF line ends, and
spaces or tabs around an id. Duplicates are ignored. Anything else on a line is an error, reported per line
(`Line 5: invalid user ID`), and the whole file is rejected.
"""

from __future__ import annotations

from array import array
from dataclasses import dataclass, field

MAX_TARGET_USERS = 1_000_000
MAX_REPORTED_ERRORS = 100
_MAX_ID = (1 << 64) - 1
_BOM = b"\xef\xbb\xbf"
_HEADER = b"user_id"


@dataclass
class ParsedTargets:
    # Distinct ids, ascending (an unsigned 64-bit array: 8 bytes an id, so a million ids take 8 MB).
    user_ids: array = field(default_factory=lambda: array("Q"))
    # (line number, message) for the first MAX_REPORTED_ERRORS bad lines.
    errors: list[tuple[int, str]] = field(default_factory=list)
    error_count: int = 0

    @property
    def ok(self) -> bool:
        return self.error_count == 0


def parse(data: bytes) -> ParsedTargets:
    result = ParsedTargets()
    if data.startswith(_BOM):
        data = data[len(_BOM) :]
    ids = array("Q")
    seen_content = False
    for number, raw in enumerate(data.split(b"\n"), start=1):
        line = raw.strip(b" \t\r")
        if not line:
            continue
        if not seen_content:
            seen_content = True
            if line.lower() == _HEADER:
                continue
        if line.isdigit() and len(line) <= 20:
            value = int(line)
            if 0 < value <= _MAX_ID:
                ids.append(value)
                continue
        result.error_count += 1
        if len(result.errors) < MAX_REPORTED_ERRORS:
            result.errors.append((number, f"Line {number}: invalid user ID"))
    if result.error_count == 0:
        result.user_ids = array("Q", sorted(set(ids)))
    return result


def to_csv(user_ids) -> bytes:
    """The file GetTargetUsers returns: a `user_id` header, then one id per line."""
    return b"user_id\n" + b"".join(b"%d\n" % user_id for user_id in user_ids)
