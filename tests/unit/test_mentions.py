"""domain/mentions.py: Discord's mention syntax, against examples and a reference model."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from communities.domain.mentions import Mentions, parse

MAX = 2**64 - 1


def test_examples():
    assert parse("hello") == Mentions((), (), False)
    assert parse("<@1> <@&2> @everyone") == Mentions((1,), (2,), True)
    assert parse("<@!3>") == Mentions((3,), (), False)
    assert parse("<@5><@4><@5>") == Mentions((5, 4), (), False)
    assert parse("<@&7> <@&7> <@7>") == Mentions((7,), (7,), False)
    assert parse(f"<@{MAX}> <@{MAX + 1}>") == Mentions((MAX,), (), False)
    assert parse("x@everyonex") == Mentions((), (), True)


def test_plain_text_lookalikes():
    for text in [
        "<@>",
        "<@abc>",
        "<@-1>",
        "<@ 1>",
        "<@1",
        "@1>",
        "<@&>",
        "<@&!1>",
        "<@0>",
        "@every one",
        "<@1.5>",
        "<@" + "1" * 21 + ">",
        "@Everyone",
        "<@\u0661>",
    ]:
        assert parse(text) == Mentions((), (), False), text


def reference(text: str) -> Mentions:
    """An independent scan, character by character."""
    users: list[int] = []
    roles: list[int] = []
    everyone = "@everyone" in text
    i = 0
    while i < len(text):
        if text.startswith("<@", i):
            j = i + 2
            target = users
            if j < len(text) and text[j] in "!&":
                target = roles if text[j] == "&" else users
                j += 1
            k = j
            while k < len(text) and text[k] in "0123456789":
                k += 1
            if j < k <= j + 20 and k < len(text) and text[k] == ">":
                value = int(text[j:k])
                if 0 < value <= MAX and value not in target:
                    target.append(value)
                i = k + 1
                continue
        i += 1
    return Mentions(tuple(users), tuple(roles), everyone)


pieces = st.one_of(
    st.sampled_from(["<@", "<@&", "<@!", ">", "@everyone", "@", "every", "one", " ", "&", "!", "<", "0", "00"]),
    st.integers(0, 2**65).map(str),
    st.text(max_size=3),
)


@settings(max_examples=500, deadline=None)
@given(st.lists(pieces, max_size=30).map("".join))
def test_parse_matches_the_reference(text):
    assert parse(text) == reference(text)
