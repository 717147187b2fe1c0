"""Mentions in message text, in Discord's syntax: `<@USER_ID>`, `<@&ROLE_ID>` and `@everyone`. Pure: which ids the
text names; whether they are members or roles of the community, and whether the author may mention everyone, is
decided by the caller (services/messages.py).

An id is 1..20 decimal digits that fit a fixed64 (`<@!ID>`, Discord's nickname form, is accepted too). Anything
else (`<@abc>`, `<@-1>`, an id past 2**64-1, `<@ 1>`) is plain text. `@everyone` counts anywhere in the text,
like Discord, also inside a word (`x@everyone`)."""

from __future__ import annotations

import re
from dataclasses import dataclass

_MAX_ID = 2**64 - 1
_PATTERN = re.compile(r"<@(!|&)?([0-9]{1,20})>|(@everyone)")


@dataclass(frozen=True)
class Mentions:
    user_ids: tuple[int, ...]  # distinct, in order of first appearance
    role_ids: tuple[int, ...]  # distinct, in order of first appearance
    everyone: bool


NONE = Mentions((), (), False)


def parse(text: str) -> Mentions:
    users: dict[int, None] = {}
    roles: dict[int, None] = {}
    everyone = False
    for match in _PATTERN.finditer(text):
        if match.group(3):
            everyone = True
            continue
        value = int(match.group(2))
        if value > _MAX_ID or value == 0:
            continue
        (roles if match.group(1) == "&" else users)[value] = None
    return Mentions(tuple(users), tuple(roles), everyone)
