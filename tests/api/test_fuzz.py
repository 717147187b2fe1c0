"""A fuzz test of every RPC of every service, on both databases.

What it covers is read from the descriptors, not written down: every `*_pb2` module of `communities.v1` is
imported, and every method of every service in it (`DESCRIPTOR.services_by_name`) gets a test case whose request
messages are generated from the method's input descriptor, field by field, by type (see `message_plans`). A new
RPC, message or field is fuzzed without editing this file. A server stream (Updates.Subscribe) is read up to its
first message or its error, then closed by the client (`read_stream`); client-streaming methods would get their
request as a stream of one (none exists).

Values are random and boundary values of each field's type, plus, for ids and invite codes, references to the
fixture world (`World`: an owner, a member holding roles, an outsider, a bot, a banned user; a community with
channels, roles, overrides, invites plain and targeted, a photo and a pending upload; another community), so
that calls get past NOT_FOUND into the deep code. Field names only steer which world references come first
(`channel_id` prefers channels); every field can still get every value of its type.

Each generated request is sent through the generated sync stub as each kind of caller (outsider, someone
without a usable token, the bot, the member, the owner), and after each call:
- the status is never UNKNOWN or INTERNAL, and any other failure carries a google.rpc.Status with ErrorInfo
  in the domain communities.v1 (UNAUTHENTICATED too); a caller without a usable token gets UNAUTHENTICATED;
- the server logged no error (an unhandled exception, a failed background job);
- the health check still answers SERVING;
- a call that failed left every table of the database as it was (dumped before and after, see `Snapshots`).

A second test sends bytes that do not parse as the request message (garbage, invalid UTF-8 in a string field,
a truncated varint, ...) to every method, including health and reflection: the answer must be
INVALID_ARGUMENT with ErrorInfo (UNAUTHENTICATED first for our methods when no token comes with it).

Bounded for CI: COMMUNITIES_FUZZ_EXAMPLES examples per method and database (default 30), derandomized. Setting
COMMUNITIES_FUZZ_EXAMPLES also switches to random generation, for longer hunting runs, e.g.
`COMMUNITIES_FUZZ_EXAMPLES=300 pytest tests/api/test_fuzz.py`. COMMUNITIES_FUZZ_REPORT=path.jsonl records every
defect found into that file instead of failing on the first one of each method (to collect them all).
"""

from __future__ import annotations

import asyncio
import base64
import collections
import contextlib
import importlib
import io
import json
import logging
import os
import pkgutil
import random
import sqlite3
import string
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import grpc
import pytest
from google.protobuf import descriptor as pb_descriptor
from google.protobuf import message_factory, text_format, timestamp_pb2
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2
from grpc_status import rpc_status
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from PIL import Image

import communities.v1
from communities.services import communities as communities_service
from communities.services import users as users_service
from communities.services.context import Principal
from communities.storage.database import is_sqlite, sqlite_path
from communities.v1 import (
    channels_pb2,
    communities_pb2,
    invites_pb2,
    media_pb2,
    members_pb2,
    permissions_pb2,
    roles_pb2,
)
from tests.conftest import Account

FD = pb_descriptor.FieldDescriptor

EXAMPLES = int(os.environ.get("COMMUNITIES_FUZZ_EXAMPLES", "30"))
RANDOM_RUN = "COMMUNITIES_FUZZ_EXAMPLES" in os.environ
REPORT_PATH = os.environ.get("COMMUNITIES_FUZZ_REPORT")
STATS_PATH = os.environ.get("COMMUNITIES_FUZZ_STATS")  # where to write how often each method answered what
CALL_TIMEOUT = 15.0
DOMAIN = "communities.v1"
MAX_DEPTH = 4  # nesting of generated messages (recursive types stop here)

FUZZ_SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=not RANDOM_RUN,
    database=None,  # nothing written into the tree; failures print their example
    print_blob=False,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.filter_too_much,
        HealthCheck.function_scoped_fixture,
        HealthCheck.large_base_example,
    ],
    phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink],
)


# ==================================================================================== the RPCs, from descriptors


@dataclass(frozen=True)
class Method:
    service: pb_descriptor.ServiceDescriptor
    descriptor: pb_descriptor.MethodDescriptor
    grpc_module: Any  # the *_pb2_grpc module with the service's stub

    @property
    def path(self) -> str:
        return f"/{self.service.full_name}/{self.descriptor.name}"

    @property
    def input(self) -> pb_descriptor.Descriptor:
        return self.descriptor.input_type

    def request_class(self):
        return message_factory.GetMessageClass(self.input)

    def __repr__(self) -> str:
        return self.path


def _generated_modules() -> list[Any]:
    names = sorted(info.name for info in pkgutil.iter_modules(communities.v1.__path__) if info.name.endswith("_pb2"))
    return [importlib.import_module(f"communities.v1.{name}") for name in names]


def discover_methods() -> list[Method]:
    methods = []
    for module in _generated_modules():
        services = module.DESCRIPTOR.services_by_name
        if not services:
            continue
        grpc_module = importlib.import_module(module.__name__ + "_grpc")
        for service in services.values():
            for method in service.methods:
                methods.append(Method(service, method, grpc_module))
    return methods


METHODS = discover_methods()


def permission_flags() -> list[int]:
    """The bit flags of every permission-like enum of the API (values that are powers of two)."""
    flags = set()
    for module in _generated_modules():
        for enum in module.DESCRIPTOR.enum_types_by_name.values():
            if "permission" in enum.name.lower():
                flags.update(v.number for v in enum.values if v.number > 0 and v.number & (v.number - 1) == 0)
    return sorted(flags)


FLAGS = permission_flags()
ALL_FLAGS = sum(FLAGS)


# ==================================================================================== plans: requests with holes


@dataclass(frozen=True)
class Ref:
    """A value taken from the fixture world when the request is built (the world may be rebuilt between
    examples, so plans name world objects instead of holding their ids)."""

    kind: str

    def __repr__(self) -> str:
        return f"<{self.kind}>"


@dataclass(frozen=True)
class Msg:
    """A planned message: (field name, planned value) pairs. Lists are repeated fields, dicts map fields."""

    type_name: str
    fields: tuple[tuple[str, Any], ...]

    def __repr__(self) -> str:
        inner = ", ".join(f"{name}={short(value)}" for name, value in self.fields)
        return f"{self.type_name.rsplit('.', 1)[-1]}({inner})"


def short(value: Any, limit: int = 60) -> str:
    if isinstance(value, bytes | str) and len(value) > limit:
        return f"{type(value).__name__}[{len(value)}]({value[:limit]!r}...)"
    if isinstance(value, list) and len(value) > 8:
        return f"[{', '.join(short(v) for v in value[:8])}, ... {len(value)} items]"
    if isinstance(value, list):
        return f"[{', '.join(short(v) for v in value)}]"
    return repr(value)


# --- world references by kind

# The first of each group is what a plausible request names most often: the world's community, its text channel,
# the low role (below the member's), the bot (below the member and the owner).
ID_REFS = {
    "community": ["community", "community_other"],
    "channel": [
        "channel_text",
        "channel_voice",
        "channel_category",
        "channel_child",
        "channel_hidden",
        "channel_other",
    ],
    "role": ["role_low", "role_moderator", "role_high", "community"],
    "user": ["user_bot", "user_member", "user_owner", "user_outsider", "user_banned"],
    "upload": ["upload", "file"],
    "file": ["file", "upload"],
    "message": ["message_owner", "message_member"],
}
ID_HINTS = {  # a word in a field name (or, for `id`, its message's name) -> reference group
    "community": "community",
    "channel": "channel",
    "parent": "channel",
    "role": "role",
    "user": "user",
    "member": "user",
    "inviter": "user",
    "removed": "user",
    "upload": "upload",
    "file": "file",
    "message": "message",
}
ALL_ID_REFS = sorted({kind for kinds in ID_REFS.values() for kind in kinds})
CODE_REFS = ["invite_plain", "invite_targeted", "invite_member"]
PAGE_REFS = ["page_members", "page_invites", "cursor"]
BYTES_REFS = ["csv_world_users"]


def _hint(words: str, hints: dict[str, str]) -> str | None:
    for word, group in hints.items():
        if word in words:
            return group
    return None


def id_group(field: FD) -> str | None:
    name = field.name.lower()
    if name in ("id", "ids"):
        name = field.containing_type.name.lower()
    return _hint(name, ID_HINTS)


# --- boundary values by type

U64_EDGES = [0, 1, 2, 2**31 - 1, 2**32, 2**53 + 1, 2**63 - 1, 2**63, 2**63 + 1, 2**64 - 2, 2**64 - 1]
U32_EDGES = [0, 1, 2**31 - 1, 2**31, 2**32 - 1]
I32_EDGES = [0, -1, 1, -(2**31), 2**31 - 1]
I64_EDGES = [0, -1, 1, -(2**63), 2**63 - 1, -(2**53) - 1, 2**53 + 1]
# The documented limits and their neighbours (API.md): lengths, counts, ages, priorities, colors, sizes.
# fmt: off
SMALL_LIMITS = [
    2, 3, 5, 10, 19, 20, 21, 25, 26, 32, 99, 100, 101, 255, 256, 999, 1000, 1001, 10_000, 10_001, 65_535, 86_400,
    262_144, 524_288, 524_289, 604_800, 604_801, 1_000_000, 1_000_001, 1_048_576, 1_048_577, 0xFFFFFF, 0x1000000,
    10 * 1024 * 1024,
]
# fmt: on

LONG = "x" * 10_000
STRING_EDGES = [
    "",
    " ",
    "\t\n \r",
    "a",
    "x" * 100,
    "x" * 101,
    "é" * 100,
    "é" * 101,
    "\U0001f3ae" * 32,
    "\U0001f3ae" * 33,
    "\U0001f3ae" * 100,
    "\U0001f3ae" * 101,
    LONG,
    "\x00",
    "a\x00b",
    "\x1b[31mred",
    "line\nbreak",
    "\u2028",
    "\u2029",
    "\u200b",
    "\u202eevil",
    "\ufeffbom",
    "  padded  ",
    "'; DROP TABLE users; --",
    "%",
    "_",
    "\\",
    '"',
    "0",
    "-1",
    "18446744073709551616",
    "NaN",
    "cmt_not-a-token",
    "23456789ab",
    "23456789ab" * 3 + "cd",
    "23456789ab" * 3 + "cde",
    "\U0010ffff",
    "\ud7ff\ue000",
]


PLAIN_CHARACTERS = string.ascii_letters + string.digits + " -_.é"


def _page_token(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


# Strings shaped like this server's page tokens (base64 of "p1:key"), with keys a client could forge.
PAGE_TOKEN_EDGES = [
    _page_token(f"p1:{key}")
    for key in (
        "",
        "1",
        "0",
        "-1",
        "x",
        "²",
        "١٢٣",
        "9" * 30,
        str(2**63),
        str(2**64 - 1),
        str(2**64),
        "1:a",
        "1:",
        ":",
        "²:a",
        f"{2**63}:a",
        f"{2**64}:zz",
        f"{-(2**63)}:a",
        "9" * 30 + ":a",
        "1:" + "a" * 1000,
        "u:0",
        "u:1",
        "u:²",
        "u:-1",
        "u:" + "9" * 18,
        "u:" + "9" * 19,
        "u:1:2",
    )
] + ["p1:1", "====", "!!", _page_token("p2:1"), "A" * 5000]


def _png(size: tuple[int, int] = (64, 48)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (200, 40, 90)).save(buffer, format="PNG")
    return buffer.getvalue()


PNG = _png()
BYTES_EDGES = [
    b"",
    b"\x00",
    b"\xff\xfe\xfd",
    bytes(range(256)),
    PNG,
    PNG[: len(PNG) // 2],
    b"GIF89a" + b"\x00" * 20,
    b"\x00" * (512 * 1024),
    b"\x00" * (512 * 1024 + 1),
    # target user files (CSV): bad lines, edge ids, a BOM and CRLF, only a header, ...
    b"user_id\n123\nabc\n-5\n\n99999999999999999999999\n1.5\n0\n",
    b"\xef\xbb\xbfuser_id\r\n 42 \r\n\r\n43\t\r\n",
    b"user_id\n",
    b"user_id\nuser_id\n",
    b"18446744073709551615\n18446744073709551616\n",
    b"9223372036854775808\n18446744073709551615\n1\n",
    b"1,2\n",
    b"\xff\xfe1\n",
    # large: 12,000 distinct ids (more than are stored inline), 40,000 lines of one id, one bad line at the end
    b"user_id\n" + b"".join(b"%d\n" % n for n in range(1, 12_001)),
    b"7\n" * 40_000,
    b"".join(b"%d\n" % n for n in range(1, 12_001)) + b"x\n",
]


# --- strategies


_plans: dict[tuple[str, int, bool], st.SearchStrategy] = {}


def request_plans(descriptor: pb_descriptor.Descriptor) -> st.SearchStrategy[Msg]:
    """Half the requests are plausible but for at most one field (so that calls get deep, and each check on the
    way is met by one bad value at a time), half are wild throughout."""
    return st.one_of(message_plans(descriptor, plausible=True), message_plans(descriptor, plausible=False))


def message_plans(descriptor: pb_descriptor.Descriptor, depth: int = 0, plausible: bool = False) -> st.SearchStrategy:
    """Planned messages of a type: each field absent or present (with presence), each real oneof with none or
    one member set, repeated fields empty, single, many or with duplicates."""
    key = (descriptor.full_name, depth, plausible)
    if key not in _plans:
        if not descriptor.fields:
            _plans[key] = st.just(Msg(descriptor.full_name, ()))
        else:
            _plans[key] = st.deferred(lambda: _message_plans(descriptor, depth, plausible))
    return _plans[key]


def _real_oneof(field: FD):
    oneof = field.containing_oneof
    if oneof is None or (len(oneof.fields) == 1 and oneof.name == "_" + field.name):
        return None  # proto3 `optional`: a synthetic oneof, handled as presence
    return oneof


@st.composite
def _message_plans(draw, descriptor: pb_descriptor.Descriptor, depth: int, plausible: bool) -> Msg:
    wild = None
    if plausible:
        wild = draw(st.sampled_from([None, *(fd.name for fd in descriptor.fields)]), label="the one wild field")

    def one(fd: FD) -> st.SearchStrategy:
        return plausible_values(fd, depth) if plausible and fd.name != wild else single_values(fd, depth)

    chosen: list[tuple[str, Any]] = []
    for oneof in descriptor.oneofs:
        if len(oneof.fields) == 1 and oneof.name == "_" + oneof.fields[0].name:
            continue
        member = draw(st.sampled_from([None, *oneof.fields]), label=f"{oneof.name} (oneof)")
        if member is not None:
            chosen.append((member.name, draw(one(member))))
    for fd in descriptor.fields:
        if _real_oneof(fd) is not None:
            continue
        if fd.type in (FD.TYPE_MESSAGE, FD.TYPE_GROUP) and depth >= MAX_DEPTH:
            continue
        if fd.is_repeated:
            values = draw(repeated_values(fd, depth, plausible and fd.name != wild))
            if values:
                chosen.append((fd.name, values))
        elif fd.has_presence:
            if draw(st.booleans(), label=f"{fd.name} present"):
                chosen.append((fd.name, draw(one(fd))))
        elif (plausible and fd.name != wild) or draw(st.sampled_from([False, True, True]), label=f"{fd.name} set"):
            # Wild: left at its default a third of the time, so that one bad field does not hide the others.
            chosen.append((fd.name, draw(one(fd))))
    return Msg(descriptor.full_name, tuple(chosen))


def _is_map(field: FD) -> bool:
    return field.type == FD.TYPE_MESSAGE and field.message_type.GetOptions().map_entry


def repeated_values(field: FD, depth: int, plausible: bool = False) -> st.SearchStrategy:
    values = plausible_values if plausible else single_values
    if _is_map(field):
        entry = field.message_type
        key, value = entry.fields_by_name["key"], entry.fields_by_name["value"]
        return st.dictionaries(values(key, depth), values(value, depth + 1), max_size=4)
    one = values(field, depth)
    if plausible:
        return st.lists(one, max_size=3)
    many: list[st.SearchStrategy] = [
        st.just([]),
        st.lists(one, min_size=1, max_size=1),
        st.lists(one, min_size=2, max_size=6),
        st.lists(one, min_size=1, max_size=3).map(lambda values: values * 3),  # duplicates
    ]
    if field.type not in (FD.TYPE_MESSAGE, FD.TYPE_GROUP):
        # Long lists around the documented caps (100 ids per lookup, 25 roles per invite, 250 roles), cheaply.
        many.append(st.tuples(one, st.sampled_from([25, 26, 100, 101, 250, 251, 1000])).map(_long_list))
    return st.one_of(many)


def _long_list(seed_and_size: tuple[Any, int]) -> list:
    seed, size = seed_and_size
    if isinstance(seed, int) and not isinstance(seed, bool):
        return [(seed + index) % 2**32 if seed < 2**32 else (seed - index) % 2**64 for index in range(size)]
    return [seed] * size


def single_values(field: FD, depth: int) -> st.SearchStrategy:
    kind = field.type
    if kind in (FD.TYPE_MESSAGE, FD.TYPE_GROUP):
        special = special_messages(field, depth)
        return special if special is not None else message_plans(field.message_type, depth + 1)
    if kind == FD.TYPE_ENUM:
        numbers = [value.number for value in field.enum_type.values]
        unknown = [max(numbers) + 1, -1, 2**31 - 1, -(2**31), 1000]
        return st.sampled_from(numbers + unknown)
    if kind in (FD.TYPE_FIXED64, FD.TYPE_UINT64):
        return uint64_values(field)
    if kind in (FD.TYPE_FIXED32, FD.TYPE_UINT32):
        return st.one_of(
            st.sampled_from(U32_EDGES),
            st.integers(0, 4),
            st.sampled_from(SMALL_LIMITS),
            st.integers(0, 2**32 - 1),
        )
    if kind in (FD.TYPE_INT32, FD.TYPE_SINT32, FD.TYPE_SFIXED32):
        return st.one_of(st.sampled_from(I32_EDGES), st.integers(-3, 4), st.integers(-(2**31), 2**31 - 1))
    if kind in (FD.TYPE_INT64, FD.TYPE_SINT64, FD.TYPE_SFIXED64):
        return st.one_of(st.sampled_from(I64_EDGES), st.integers(-3, 4), st.integers(-(2**63), 2**63 - 1))
    if kind == FD.TYPE_BOOL:
        return st.booleans()
    if kind in (FD.TYPE_FLOAT, FD.TYPE_DOUBLE):
        width = 32 if kind == FD.TYPE_FLOAT else 64
        return st.one_of(st.sampled_from([0.0, -0.0, 1.0, -1.0]), st.floats(width=width))
    if kind == FD.TYPE_STRING:
        return string_values(field)
    if kind == FD.TYPE_BYTES:
        return st.one_of(
            st.sampled_from(BYTES_EDGES),
            st.sampled_from(BYTES_REFS).map(Ref),
            st.binary(max_size=64),
        )
    raise AssertionError(f"field type {kind} of {field.full_name} has no strategy: add one")


def plausible_values(field: FD, depth: int) -> st.SearchStrategy:
    """Values a well-behaved client would send: world references, small numbers, defined enum values, plain
    names, a valid target list or image, a time in the near future."""
    kind = field.type
    name = field.name.lower()
    if kind in (FD.TYPE_MESSAGE, FD.TYPE_GROUP):
        full_name = field.message_type.full_name
        if full_name in ("google.protobuf.Timestamp", "google.protobuf.Duration"):
            seconds = st.sampled_from([60, 3_600, 86_400])
            if full_name == "google.protobuf.Timestamp":
                seconds = seconds.map(lambda delta: Ref(f"now{delta:+d}s"))
            return seconds.map(lambda s: Msg(full_name, (("seconds", s), ("nanos", 0))))
        special = special_messages(field, depth)
        if special is not None:
            return special
        return message_plans(field.message_type, depth + 1, plausible=True)
    if kind == FD.TYPE_ENUM:
        return st.sampled_from([value.number for value in field.enum_type.values])
    if kind in (FD.TYPE_FIXED64, FD.TYPE_UINT64):
        if _is_permission_field(field):
            return st.lists(st.sampled_from(FLAGS), max_size=3).map(lambda flags: sum(set(flags)))
        group = id_group(field)
        if group is None:
            return st.sampled_from(ALL_ID_REFS).map(Ref)
        return st.one_of(st.just(ID_REFS[group][0]), st.sampled_from(ID_REFS[group])).map(Ref)
    if kind in (FD.TYPE_FIXED32, FD.TYPE_UINT32, FD.TYPE_INT32, FD.TYPE_SINT32, FD.TYPE_SFIXED32):
        return st.one_of(st.integers(0, 4), st.sampled_from([10, 100]))
    if kind in (FD.TYPE_INT64, FD.TYPE_SINT64, FD.TYPE_SFIXED64):
        return st.integers(0, 4)
    if kind == FD.TYPE_BOOL:
        return st.booleans()
    if kind in (FD.TYPE_FLOAT, FD.TYPE_DOUBLE):
        return st.sampled_from([0.0, 1.0])
    if kind == FD.TYPE_STRING:
        if "code" in name:
            return st.sampled_from(CODE_REFS).map(Ref)
        if "token" in name or "cursor" in name:
            return st.one_of(st.just(""), st.sampled_from(PAGE_REFS).map(Ref))
        return st.text(PLAIN_CHARACTERS, min_size=1, max_size=24).filter(str.strip)
    if kind == FD.TYPE_BYTES:
        return st.sampled_from([Ref("csv_world_users"), PNG, b"user_id\n1\n", b"hello"])
    return single_values(field, depth)


def _is_permission_field(field: FD) -> bool:
    name = field.name.lower()
    return any(word in name for word in ("permission", "pos", "neg", "allow", "deny"))


def uint64_values(field: FD) -> st.SearchStrategy:
    if _is_permission_field(field):
        masks = st.lists(st.sampled_from(FLAGS), max_size=len(FLAGS)).map(lambda flags: sum(set(flags)))
        return st.one_of(masks, masks, st.sampled_from([0, ALL_FLAGS, ALL_FLAGS | 1 << 13, 1 << 13, 1 << 63]))
    group = id_group(field)
    hinted = st.sampled_from(ID_REFS[group]).map(Ref) if group else st.nothing()
    return st.one_of(
        hinted,
        hinted,
        st.sampled_from(ALL_ID_REFS).map(Ref),
        st.sampled_from(U64_EDGES),
        st.sampled_from(["absent_id"]).map(Ref),  # a plausible snowflake of nothing
        st.integers(0, 2**64 - 1),
    )


def string_values(field: FD) -> st.SearchStrategy:
    name = field.name.lower()
    text = st.text(st.characters(exclude_categories=("Cs",)), max_size=40)
    plausible = st.text(PLAIN_CHARACTERS, min_size=1, max_size=24)
    choices = [st.sampled_from(STRING_EDGES), text, plausible, plausible]
    if "code" in name:
        choices[:0] = [st.sampled_from(CODE_REFS).map(Ref)] * 2
    elif "token" in name or "cursor" in name:
        choices[:0] = [st.sampled_from(PAGE_REFS).map(Ref), st.sampled_from(PAGE_TOKEN_EDGES)]
    else:
        choices += [st.sampled_from(CODE_REFS + PAGE_REFS).map(Ref), st.sampled_from(PAGE_TOKEN_EDGES)]
    return st.one_of(choices)


# fmt: off
TIMESTAMP_SECONDS = [
    0, -1, 1, -62_135_596_800, -62_135_596_801, 253_402_300_799, 253_402_300_800, 2**63 - 1, -(2**63), 2**62,
    10**12, 4_102_444_800,
]
# fmt: on
NANOS = [0, 1, 999_999_999, 1_000_000_000, -1, -999_999_999, 2**31 - 1, -(2**31)]
RELATIVE_SECONDS = [-86_400, -1, 0, 1, 60, 3_600, 86_400, 10 * 365 * 86_400]


def special_messages(field: FD, depth: int) -> st.SearchStrategy | None:
    """Well-known types whose interesting values are not their fields' edges."""
    name = field.message_type.full_name
    if name in ("google.protobuf.Timestamp", "google.protobuf.Duration"):
        seconds = st.one_of(
            st.sampled_from(RELATIVE_SECONDS).map(lambda delta: Ref(f"now{delta:+d}s")),
            st.sampled_from(RELATIVE_SECONDS).map(lambda delta: Ref(f"now{delta:+d}s")),
            st.sampled_from(TIMESTAMP_SECONDS),
            st.integers(-(2**63), 2**63 - 1),
        )
        if name == "google.protobuf.Duration":
            seconds = st.one_of(st.sampled_from([0, 1, -1, 315_576_000_000, 315_576_000_001, 2**63 - 1]), seconds)
        nanos = st.one_of(st.just(0), st.sampled_from(NANOS), st.integers(-(2**31), 2**31 - 1))
        return st.builds(lambda s, n: Msg(name, (("seconds", s), ("nanos", n))), seconds, nanos)
    if name == "google.protobuf.FieldMask":
        names = [f.name for f in field.containing_type.fields] + ["", "nope", "a.b", "name.name", "*", "x" * 300]
        return st.lists(st.sampled_from(names), max_size=5).map(lambda paths: Msg(name, (("paths", paths),)))
    return None


# ==================================================================================== the fixture world


@dataclass
class World:
    owner: Account
    member: Account
    outsider: Account
    bot: Account
    banned: Account
    revoked_token: str
    ids: dict[str, int]
    codes: dict[str, str]
    pages: dict[str, str]
    # What the world's roles must still look like for it to be worth fuzzing (see Fuzzer.world_intact).
    role_specs: dict[int, tuple[int, int]] = field(default_factory=dict)

    def account(self, caller: str) -> Account:
        return getattr(self, caller)

    def value(self, ref: Ref, now_ms: int) -> Any:
        kind = ref.kind
        if kind.startswith("now"):
            return now_ms // 1000 + int(kind[3:-1])
        if kind in self.ids:
            return self.ids[kind]
        if kind in self.codes:
            return self.codes[kind]
        if kind in self.pages:
            return self.pages[kind]
        if kind == "csv_world_users":
            users = (self.member, self.outsider, self.bot, self.banned, self.owner)
            return b"user_id\n" + b"".join(b"%d\n" % account.id for account in users)
        raise AssertionError(f"unknown reference {kind}")


def resolve(value: Any, world: World, now_ms: int) -> Any:
    return world.value(value, now_ms) if isinstance(value, Ref) else value


def build(message, plan: Msg, world: World, now_ms: int) -> None:
    """Fills `message` from the plan, resolving world references."""
    for name, value in plan.fields:
        field_ = message.DESCRIPTOR.fields_by_name[name]
        target = getattr(message, name) if field_.is_repeated or field_.type == FD.TYPE_MESSAGE else None
        if _is_map(field_):
            value_field = field_.message_type.fields_by_name["value"]
            for key, item in value.items():
                if value_field.type == FD.TYPE_MESSAGE:
                    build(target[resolve(key, world, now_ms)], item, world, now_ms)
                else:
                    target[resolve(key, world, now_ms)] = resolve(item, world, now_ms)
        elif field_.is_repeated and field_.type == FD.TYPE_MESSAGE:
            for item in value:
                build(target.add(), item, world, now_ms)
        elif field_.is_repeated:
            target.extend(resolve(item, world, now_ms) for item in value)
        elif field_.type == FD.TYPE_MESSAGE:
            target.SetInParent()
            build(target, value, world, now_ms)
        else:
            try:
                setattr(message, name, resolve(value, world, now_ms))
            except ValueError:  # an unknown number for a closed enum cannot be set
                pass


ANONYMOUS = [
    "no metadata",
    "empty authorization",
    "scheme only",
    "unknown token",
    "basic auth",
    "person token as Bot",
    "bot token as Bearer",
    "revoked token",
    "very long token",
    "token without scheme",
    "JWT without signature",
    "JWT with a bad signature",
    "JWT of garbage",
]
# A JSON Web Token's header and claims (base64url JSON), as the game identities the API accepts.
_JWT_HEADER = base64.urlsafe_b64encode(b'{"alg":"none","typ":"JWT"}').decode().rstrip("=")
_JWT_HS256 = base64.urlsafe_b64encode(b'{"alg":"HS256","typ":"JWT","kid":"fuzz"}').decode().rstrip("=")
_JWT_CLAIMS = base64.urlsafe_b64encode(b'{"sub":"1","iss":"fuzz","exp":99999999999}').decode().rstrip("=")


def anonymous_metadata(kind: str, world: World) -> tuple[tuple[str, str], ...]:
    value = {
        "no metadata": None,
        "empty authorization": "",
        "scheme only": "Bearer",
        "unknown token": "Bearer cmt_" + "A" * 43,
        "basic auth": "Basic dXNlcjpwYXNz",
        "person token as Bot": f"Bot {world.owner.token}",
        "bot token as Bearer": f"Bearer {world.bot.token}",
        "revoked token": f"Bearer {world.revoked_token}",
        "very long token": "Bearer " + "x" * 3000,
        "token without scheme": world.owner.token,
        "JWT without signature": f"Bearer {_JWT_HEADER}.{_JWT_CLAIMS}.",
        "JWT with a bad signature": f"Bearer {_JWT_HS256}.{_JWT_CLAIMS}.c2lnbmF0dXJl",
        "JWT of garbage": "Bearer eyJ.eyJ.x",
    }[kind]
    return () if value is None else (("authorization", value),)


# Metadata the API reads besides authorization: the reason recorded in the audit log (printable ASCII only, as
# gRPC requires of metadata values; with the longest token, within gRPC's default 8 KiB of metadata, past which the
# transport refuses the call before the server sees it).
AUDIT_REASON_KEY = "x-audit-log-reason"
AUDIT_REASONS = st.one_of(
    st.none(),
    st.none(),
    st.sampled_from(
        # Also percent-encoded, as the API reads it: NUL, a newline, invalid UTF-8, a cut sequence, a check mark.
        ["", " ", "spam", "x" * 512, "x" * 513, "x" * 3000, "%00", "%0A", "%ff", "%e2%9c", "%E2%9C%93", "%", "%zz"]
    ),
    st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=40),
)

# Least privileged first: the owner, whose calls most often change the world, comes last. The bot (a member with
# a low role, and a bot token) calls in a third of the examples, to keep the run short.
CALLERS = ("outsider", "anonymous", "bot", "member", "owner")


# ==================================================================================== database snapshots

# Columns that change by themselves, without any call: ignored when comparing.
IGNORED_COLUMNS = {
    # The server renews its worker-id lease every few seconds (server.py, _renew_worker_id).
    ("server_workers", "heartbeat_at"),
}
# Rows a call leaves to be finished right after it answers; a dump waits (up to SETTLE_SECONDS) until there are
# none, so that their finishing is not taken for a change made by the next call.
SETTLING = {
    # An update stream the fuzzer closed: the server marks its presence row closed once it notices.
    "stream_presence": "open",
    # PostgreSQL's sequencer gives a committed event its stream position just after the commit.
    "events": "position IS NULL",
}
SETTLE_SECONDS = 5.0
# Tables compared by a summary instead of row by row, because dumping them whole around every call would dominate
# the run time.
SUMMARIZED = {
    # The events a community's changes publish (the update stream's and audit log's record) only ever grow: one
    # row per change, kept for days. A failed call that published one would change its community's count.
    "events": (
        ("community_id", "count", "last_seq", "last_id", "sequenced", "payload_bytes"),
        "SELECT community_id, COUNT(*) AS count, MAX(seq) AS last_seq, MAX(id) AS last_id, "
        "COUNT(position) AS sequenced, SUM(LENGTH(payload)) AS payload_bytes FROM events GROUP BY community_id",
    ),
    # A targeted invite's list can hold a million rows (the fuzzer's large files store 12,000).
    "invite_targets": (
        ("code", "count", "min_user_id", "max_user_id", "checksum"),
        "SELECT code, COUNT(*) AS count, MIN(user_id) AS min_user_id, MAX(user_id) AS max_user_id, "
        "SUM(user_id % 9973) AS checksum FROM invite_targets GROUP BY code",
    ),
}


class Snapshot:
    """Every table as dumped: `raw` per table (rows as fetched from SQLite, JSON text from PostgreSQL) is
    compared first, and parsed into rows only when it differs or is read."""

    def __init__(
        self, columns: dict[str, tuple[str, ...]], raw: dict[str, Any], parse: Callable[[Any], list], pending: int
    ):
        self.columns = columns
        self.raw = raw
        self.pending = pending  # rows still settling (SETTLING)
        self.taken_at_ms = int(time.time() * 1000)
        self._parse = parse
        self._rows: dict[str, list[tuple]] = {}

    def table_rows(self, table: str) -> list[tuple]:
        if table not in self._rows:
            self._rows[table] = self._parse(self.raw[table])
        return self._rows[table]

    def rows(self, table: str) -> list[dict[str, Any]]:
        columns = self.columns[table]
        return [dict(zip(columns, row, strict=True)) for row in self.table_rows(table)]

    def same_as(self, other: Snapshot, ignore: tuple[str, ...] = ()) -> bool:
        return all(self.raw[table] == other.raw.get(table) for table in self.raw if table not in ignore)

    def normalized(self, now_ms: int) -> dict[str, collections.Counter]:
        """The tables as multisets of rows, with ignored columns dropped, and with expired invites as the
        maintenance sweep (sweep_expired_invites, every minute) leaves them: inactive, and no longer counted in
        their community's invite_count. The sweep changes nothing an expired invite could still do, so a failed
        call that happens to run while it does has not changed anything either."""
        result: dict[str, collections.Counter] = {}
        expired_active: collections.Counter = collections.Counter()
        if "invites" in self.raw:
            index = {name: position for position, name in enumerate(self.columns["invites"])}
            active = index["active"]
            fixed: collections.Counter = collections.Counter()
            for row in self.table_rows("invites"):
                expires_at = row[index["expires_at"]]
                if row[active] and expires_at is not None and expires_at <= now_ms:
                    expired_active[row[index["community_id"]]] += 1
                    row = (*row[:active], False, *row[active + 1 :])
                fixed[row] += 1
            result["invites"] = fixed
        if "communities" in self.raw and expired_active:
            index = {name: position for position, name in enumerate(self.columns["communities"])}
            count = index["invite_count"]
            fixed = collections.Counter()
            for row in self.table_rows("communities"):
                swept = expired_active.get(row[index["id"]], 0)
                if swept:
                    row = (*row[:count], row[count] - swept, *row[count + 1 :])
                fixed[row] += 1
            result["communities"] = fixed
        for table, columns in self.columns.items():
            if table in result:
                continue
            keep = [position for position, name in enumerate(columns) if (table, name) not in IGNORED_COLUMNS]
            if len(keep) == len(columns):
                result[table] = collections.Counter(self.table_rows(table))
            else:
                result[table] = collections.Counter(tuple(row[i] for i in keep) for row in self.table_rows(table))
        return result


def diff(before: Snapshot, after: Snapshot, limit: int = 20) -> list[str]:
    """What changed between two snapshots, as lines of removed (-) and added (+) rows; empty if nothing did."""
    if after.same_as(before):
        return []
    now = max(before.taken_at_ms, after.taken_at_ms)
    old, new = before.normalized(now), after.normalized(now)
    lines = []
    for table in sorted(set(old) | set(new)):
        a, b = old.get(table, collections.Counter()), new.get(table, collections.Counter())
        if a == b:
            continue
        lines.append(f"table {table} {after.columns.get(table) or before.columns[table]}:")
        lines += [f"  - {row}" for row in list((a - b).elements())[:limit]]
        lines += [f"  + {row}" for row in list((b - a).elements())[:limit]]
    return lines


def _json_rows(text: str) -> list[tuple]:
    return [tuple(row) for row in json.loads(text)]


# Binary columns (upload parts of 512 KiB, photo previews, token hashes, event payloads) are compared by their
# length and their first BINARY_PREFIX bytes: reading megabytes around every call would dominate the run time.
BINARY_PREFIX = 1024


class Snapshots:
    """Dumps every table of the server's database, outside the server's own connection: a second sqlite3
    connection for SQLite (WAL lets it read while the server runs), an asyncpg connection for PostgreSQL (run
    on the server's event loop, where asyncpg lives; one statement returning each table as JSON text, since a
    round trip per table would cost more than the call under test). Either way one read transaction (one
    statement, on PostgreSQL), so the tables are consistent with each other."""

    def __init__(self, server, database_url: str):
        self.server = server
        self.sqlite: sqlite3.Connection | None = None
        self.pg: asyncpg.Connection | None = None
        self.pg_snapshot = None
        self.columns: dict[str, tuple[str, ...]] = {}
        binary: set[tuple[str, str]] = set()
        if is_sqlite(database_url):
            self.sqlite = sqlite3.connect(str(sqlite_path(database_url)), isolation_level=None, check_same_thread=False)
            names = [
                row[0]
                for row in self.sqlite.execute(
                    "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
                )
            ]
            for name in names:
                for row in self.sqlite.execute(f'PRAGMA table_info("{name}")'):
                    self.columns[name] = (*self.columns.get(name, ()), row[1])
                    if row[2].upper() == "BLOB":
                        binary.add((name, row[1]))
        else:
            self.pg = server.run(asyncpg.connect(database_url))
            rows = server.run(
                self.pg.fetch(
                    "SELECT table_name, column_name, data_type FROM information_schema.columns "
                    "WHERE table_schema = current_schema() ORDER BY table_name, ordinal_position"
                )
            )
            for row in rows:
                self.columns[row["table_name"]] = (*self.columns.get(row["table_name"], ()), row["column_name"])
                if row["data_type"] == "bytea":
                    binary.add((row["table_name"], row["column_name"]))
        self.table_names = sorted(self.columns)
        self.waits = 0  # dumps retaken because rows were still settling
        assert "communities" in self.table_names and "invites" in self.table_names, self.table_names
        self.queries: dict[str, str] = {}
        for table in self.table_names:
            if table in SUMMARIZED:
                self.columns[table], self.queries[table] = SUMMARIZED[table]
                continue
            values = []
            for column in self.columns[table]:
                if (table, column) not in binary:
                    values.append(f'"{column}"')
                elif self.pg is not None:  # bytea comes as hex in JSON: an MD5 is shorter
                    prefix = f'md5(substring("{column}" from 1 for {BINARY_PREFIX}))'
                    values.append(f'length("{column}") || \':\' || {prefix} AS "{column}"')
                else:
                    prefix = f'hex(substr("{column}", 1, {BINARY_PREFIX}))'
                    values.append(f'length("{column}") || \':\' || {prefix} AS "{column}"')
            self.queries[table] = f'SELECT {", ".join(values)} FROM "{table}"'
        self.settling = " + ".join(
            f"(SELECT COUNT(*) FROM {table} WHERE {condition})"
            for table, condition in SETTLING.items()
            if table in self.columns
        )
        self.settling = f"SELECT {self.settling or '0'}"
        if self.pg is not None:
            parts = []
            for table in self.table_names:
                row = ", ".join(f't."{column}"' for column in self.columns[table])
                query = self.queries[table]
                parts.append(f"(SELECT coalesce(json_agg(json_build_array({row})), '[]')::text FROM ({query}) AS t)")
            self.pg_snapshot = server.run(self.pg.prepare(f"SELECT ({self.settling}), {', '.join(parts)}"))

    def take(self) -> Snapshot:
        """A dump once nothing is settling any more (or SETTLE_SECONDS passed: `pending` then says so)."""
        deadline = time.monotonic() + SETTLE_SECONDS
        while True:
            snapshot = self._take()
            if not snapshot.pending or time.monotonic() > deadline:
                return snapshot
            self.waits += 1
            time.sleep(0.01)

    def _take(self) -> Snapshot:
        if self.sqlite is not None:
            raw = {}
            self.sqlite.execute("BEGIN")
            try:
                pending = self.sqlite.execute(self.settling).fetchone()[0]
                for table in self.table_names:
                    raw[table] = self.sqlite.execute(self.queries[table]).fetchall()
            finally:
                self.sqlite.execute("ROLLBACK")
            return Snapshot(self.columns, raw, list, pending)
        pending, *texts = self.server.run(self._take_pg())
        return Snapshot(self.columns, dict(zip(self.table_names, texts, strict=True)), _json_rows, pending)

    async def _take_pg(self) -> tuple:
        assert self.pg is not None and self.pg_snapshot is not None
        return tuple(await self.pg_snapshot.fetchrow())  # one statement: one snapshot of every table

    def close(self) -> None:
        if self.sqlite is not None:
            self.sqlite.close()
        if self.pg is not None:
            self.server.run(self.pg.close())


# ==================================================================================== the fuzzer


class ServerErrors(logging.Handler):
    """Error records the server logs (an unhandled exception in a call, a failed background job)."""

    def __init__(self):
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.name.startswith(("communities", "grpc")):
            self.records.append(record)

    def take(self) -> list[str]:
        texts = []
        for record in self.records:
            text = f"{record.name}: {record.getMessage()}"
            if record.exc_info:
                text += "\n" + "".join(traceback.format_exception(*record.exc_info))
            texts.append(text)
        self.records.clear()
        return texts


@dataclass
class Outcome:
    code: grpc.StatusCode
    details: str = ""
    error_info: error_details_pb2.ErrorInfo | None = None
    problem: str = ""  # what was wrong with the status itself


def _outcome(error: grpc.RpcError) -> Outcome:
    outcome = Outcome(error.code(), error.details() or "")
    try:
        status = rpc_status.from_call(error)
    except ValueError as mismatch:
        outcome.problem = f"google.rpc.Status does not match the call's status: {mismatch}"
        return outcome
    if status is None:
        outcome.problem = "no google.rpc.Status (grpc-status-details-bin) in the trailers"
        return outcome
    for detail in status.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            outcome.error_info = info
    if outcome.error_info is None:
        outcome.problem = "google.rpc.Status without ErrorInfo"
    elif outcome.error_info.domain != DOMAIN or not outcome.error_info.reason:
        outcome.problem = f"ErrorInfo with domain {outcome.error_info.domain!r}, reason {outcome.error_info.reason!r}"
    return outcome


# A server stream (Updates.Subscribe) may stay open for ever: the fuzzer reads its first message, or its error,
# within this long; a stream that has answered, or that is still open and silent then, has accepted the call and
# is closed by the client (CANCELLED), which the server must take in its stride.
STREAM_WINDOW_SECONDS = 2.0


def read_stream(stream) -> Outcome:
    cancelled_by_us = threading.Event()

    def give_up() -> None:
        cancelled_by_us.set()
        stream.cancel()

    timer = threading.Timer(STREAM_WINDOW_SECONDS, give_up)
    timer.start()
    try:
        next(stream, None)
    except grpc.RpcError as error:
        if not (cancelled_by_us.is_set() and error.code() == grpc.StatusCode.CANCELLED):
            return _outcome(error)
    finally:
        timer.cancel()
        stream.cancel()
    return Outcome(grpc.StatusCode.OK)


def request_text(message, limit: int = 3000) -> str:
    text = text_format.MessageToString(message, as_utf8=True, as_one_line=True)
    return text if len(text) <= limit else text[:limit] + f"... ({len(text)} characters)"


class Fuzzer:
    def __init__(self, server, channel: grpc.Channel, database_url: str):
        self.server = server
        self.channel = channel
        self.backend = "sqlite" if is_sqlite(database_url) else "postgres"
        self.snapshots = Snapshots(server, database_url)
        self.health = health_pb2_grpc.HealthStub(channel)
        self.stubs: dict[str, Any] = {}
        self.errors = ServerErrors()
        logging.getLogger().addHandler(self.errors)
        self.world: World | None = None
        self.state: Snapshot | None = None  # the database after the last call
        self.checked: Snapshot | None = None  # the last state the world was found intact in
        self.calls = 0
        self.rebuilds = 0
        self.outcomes: collections.Counter = collections.Counter()  # (method, caller, code, reason)
        self.seconds: collections.Counter = collections.Counter()  # where the time goes

    def close(self) -> None:
        logging.getLogger().removeHandler(self.errors)
        self.snapshots.close()
        if STATS_PATH:
            stats = {
                "backend": self.backend,
                "calls": self.calls,
                "world_rebuilds": self.rebuilds,
                "seconds": {phase: round(seconds, 1) for phase, seconds in self.seconds.items()},
                "settle_waits": self.snapshots.waits,
                "outcomes": sorted([*key, count] for key, count in self.outcomes.items()),
            }
            with open(STATS_PATH, "a", encoding="utf-8") as out:
                out.write(json.dumps(stats) + "\n")

    # --- calls

    def stub_method(self, method: Method) -> Callable:
        name = method.service.full_name
        if name not in self.stubs:
            self.stubs[name] = getattr(method.grpc_module, f"{method.service.name}Stub")(self.channel)
        return getattr(self.stubs[name], method.descriptor.name)

    def invoke(self, method: Method, request, metadata) -> Outcome:
        call = self.stub_method(method)
        descriptor = method.descriptor
        argument = iter([request]) if descriptor.client_streaming else request
        if not descriptor.server_streaming:
            try:
                call(argument, metadata=metadata, timeout=CALL_TIMEOUT)
            except grpc.RpcError as error:
                return _outcome(error)
            return Outcome(grpc.StatusCode.OK)
        return read_stream(call(argument, metadata=metadata, timeout=CALL_TIMEOUT))

    def rpc(self, service_module, method: str, request, account: Account):
        """A setup call (world building): through the same generated stubs."""
        service = next(iter(service_module.DESCRIPTOR.services_by_name.values()))
        stub = getattr(importlib.import_module(service_module.__name__ + "_grpc"), f"{service.name}Stub")
        return getattr(stub(self.channel), method)(request, metadata=account.metadata, timeout=60)

    def drain(self) -> None:
        """Waits for work a call left running (target user jobs) so that it does not change tables later."""

        async def run() -> None:
            while self.server.app.background:
                await asyncio.gather(*list(self.server.app.background), return_exceptions=True)

        self.server.run(run())

    def healthy(self) -> str:
        try:
            answer = self.health.Check(health_pb2.HealthCheckRequest(), timeout=10)
        except grpc.RpcError as error:
            return f"health check failed: {error.code()} {error.details()}"
        if answer.status != health_pb2.HealthCheckResponse.SERVING:
            return f"health check answered {health_pb2.HealthCheckResponse.ServingStatus.Name(answer.status)}"
        return ""

    # --- the world

    def build_world(self) -> World:
        server = self.server

        def account(name: str, *, bot: bool = False) -> Account:
            return Account(server.run(users_service.create_user(server.app, name, bot=bot)))

        owner, member, outsider = account("fuzz owner"), account("fuzz member"), account("fuzz outsider")
        bot, banned, revoked = account("fuzz bot", bot=True), account("fuzz banned"), account("fuzz revoked")
        server.run(users_service.revoke(server.app, revoked.token))
        C, CH, R, M, IV, MD = communities_pb2, channels_pb2, roles_pb2, members_pb2, invites_pb2, media_pb2
        P = {
            value.name.removeprefix("COMMUNITY_PERMISSION_"): value.number
            for value in permissions_pb2.CommunityPermission.DESCRIPTOR.values
        }

        community = self.rpc(C, "CreateCommunity", C.CreateCommunity(name="Fuzz world"), owner).id
        text = self.rpc(C, "GetSettings", C.GetSettings(community_id=community), owner).system_messages.channel_id

        def channel(name: str, kind: int = CH.TEXT, **more) -> int:
            request = CH.CreateChannel(community_id=community, name=name, type=kind, **more)
            return self.rpc(CH, "CreateChannel", request, owner).id

        voice, category = channel("voice", CH.VOICE), channel("category", CH.CATEGORY)
        child, hidden = channel("child", parent_id=category), channel("hidden")
        deny_view = CH.PermissionOverrides(neg=P["VIEW_CHANNEL"])
        self.rpc(
            CH,
            "CreateChannelOverride",
            CH.CreateChannelOverride(channel_id=hidden, role_id=community, overrides=deny_view),
            owner,
        )

        def role(name: str, priority: int, permissions: int) -> int:
            request = R.CreateRole(community_id=community, name=name, priority=priority, permissions=permissions)
            return self.rpc(R, "CreateRole", request, owner).id

        moderator_bits = (
            P["MODIFY_ROLES"] | P["MODIFY_CHANNEL"] | P["REMOVE_MEMBERS"] | P["CREATE_INVITE"] | P["VIEW_CHANNEL"]
        )
        moderator = role("moderator", 5, moderator_bits)
        high = role("high", 10, P["ADMINISTRATOR"])
        low = role("low", 1, P["SEND_MESSAGES"])
        overrides = CH.PermissionOverrides(pos=P["ADD_REACTIONS"], neg=P["SEND_MEDIA"])
        self.rpc(
            CH,
            "CreateChannelOverride",
            CH.CreateChannelOverride(channel_id=text, role_id=low, overrides=overrides),
            owner,
        )

        plain = self.rpc(IV, "CreateInvite", IV.CreateInvite(channel_id=text, role_ids=[low], unique=True), owner).code
        for joining in (member, bot, banned):
            self.rpc(IV, "UseInvite", IV.UseInvite(code=plain), joining)
        self.rpc(
            M,
            "EditMember",
            M.EditMember(community_id=community, member_id=member.id, role_ids=M.RoleIds(ids=[moderator, low])),
            owner,
        )
        ban = M.RemoveMembers(
            community_id=community, member_ids=[banned.id], until=timestamp_pb2.Timestamp(), reason="fuzz"
        )
        self.rpc(M, "RemoveMembers", ban, owner)
        targets = b"user_id\n" + b"".join(b"%d\n" % a.id for a in (member, outsider, bot))
        targeted = self.rpc(
            IV, "CreateInvite", IV.CreateInvite(channel_id=text, unique=True, target_users_file=targets), owner
        ).code
        member_invite = self.rpc(IV, "CreateInvite", IV.CreateInvite(channel_id=text, unique=True), member).code

        photo_upload, pending_upload = server.app.ids.next_id(), server.app.ids.next_id()
        for upload in (photo_upload, pending_upload):
            self.rpc(MD, "UploadFilePart", MD.UploadFilePart(upload_id=upload, part=0, data=PNG), owner)
        ref = MD.UploadedFileRef(id=photo_upload, name="photo.png", part_count=1)
        file_id = self.rpc(C, "EditPhoto", C.EditPhoto(community_id=community, file=ref), owner).photo.file_id

        other = self.rpc(C, "CreateCommunity", C.CreateCommunity(name="Elsewhere"), outsider).id
        other_channel = self.rpc(
            C, "GetSettings", C.GetSettings(community_id=other), outsider
        ).system_messages.channel_id

        pages = {
            "page_members": self.rpc(
                M, "ListMembers", M.ListMembers(community_id=community, page_size=1), owner
            ).next_page_token,
            "page_invites": self.rpc(
                IV, "ListInvites", IV.ListInvites(community_id=community, page_size=1), owner
            ).next_page_token,
        }
        assert all(pages.values()), pages
        pages["cursor"] = self.update_cursor(community, owner)
        messages = {
            f"message_{who}": self.message_in(text, account) for who, account in (("owner", owner), ("member", member))
        }
        roles = self.rpc(R, "GetRoles", R.GetRoles(community_id=community), owner)
        world = World(
            owner=owner,
            member=member,
            outsider=outsider,
            bot=bot,
            banned=banned,
            revoked_token=revoked.token,
            ids={
                "community": community,
                "community_other": other,
                "channel_text": text,
                "channel_voice": voice,
                "channel_category": category,
                "channel_child": child,
                "channel_hidden": hidden,
                "channel_other": other_channel,
                "role_moderator": moderator,
                "role_high": high,
                "role_low": low,
                "user_owner": owner.id,
                "user_member": member.id,
                "user_outsider": outsider.id,
                "user_bot": bot.id,
                "user_banned": banned.id,
                "upload": pending_upload,
                "file": file_id,
                "absent_id": server.app.ids.next_id(),
                **messages,
            },
            codes={"invite_plain": plain, "invite_targeted": targeted, "invite_member": member_invite},
            pages=pages,
            role_specs={r.id: (r.permissions, r.priority) for r in roles.roles},
        )
        return world

    def message_in(self, channel_id: int, author: Account) -> int:
        """A message in the channel (Messages.SendMessage), for requests that name one; without the service, an
        id of nothing."""
        try:
            messages_pb2 = importlib.import_module("communities.v1.messages_pb2")
        except ImportError:
            return self.server.app.ids.next_id()
        request = messages_pb2.SendMessage(channel_id=channel_id, text=f"hello from {author.name}")
        return self.rpc(messages_pb2, "SendMessage", request, author).id

    def update_cursor(self, community: int, owner: Account) -> str:
        """A real cursor of the update stream (Updates.Subscribe), for requests that resume from one: the owner
        subscribes, renames the community, and keeps the cursor of that update. Empty without the service."""
        try:
            updates_pb2 = importlib.import_module("communities.v1.updates_pb2")
            updates_pb2_grpc = importlib.import_module("communities.v1.updates_pb2_grpc")
        except ImportError:
            return ""
        stream = updates_pb2_grpc.UpdatesStub(self.channel).Subscribe(
            updates_pb2.Subscribe(), metadata=owner.metadata, timeout=30
        )
        try:
            assert next(stream).WhichOneof("event") == "ready"
            rename = communities_pb2.EditCommunity(community_id=community, name="Fuzz world (renamed)")
            self.rpc(communities_pb2, "EditCommunity", rename, owner)
            for update in stream:
                if update.cursor:
                    return update.cursor
            raise AssertionError("the update stream ended without an update")
        finally:
            stream.cancel()

    def world_intact(self, snapshot: Snapshot) -> bool:
        """Whether what makes the world worth fuzzing is still there (a successful call may have deleted the
        community, kicked the member, let the outsider in, used the upload, ...). Renames and the like are fine,
        and so are changed default permissions, a lifted ban and the loss of the secondary objects (the voice,
        category and child channels, the high role, the member's invite): requests naming them then test NOT_FOUND,
        and rebuilding costs time."""
        world = self.world
        if world is None:
            return False
        ids = world.ids
        community = ids["community"]
        communities = {row["id"]: row for row in snapshot.rows("communities")}
        main = communities.get(community)
        if main is None or ids["community_other"] not in communities:
            return False
        if main["photo_file_id"] != ids["file"]:
            return False
        channels = {row["id"] for row in snapshot.rows("channels")}
        if not {ids["channel_text"], ids["channel_hidden"], ids["channel_other"]} <= channels:
            return False
        roles = {row["id"]: (row["permissions"], row["priority"]) for row in snapshot.rows("roles")}
        for kind in ("role_moderator", "role_low"):
            if roles.get(ids[kind]) != world.role_specs[ids[kind]]:
                return False
        members = {(row["community_id"], row["user_id"]) for row in snapshot.rows("members")}
        if not {(community, a.id) for a in (world.owner, world.member, world.bot)} <= members:
            return False
        if {(community, world.outsider.id), (community, world.banned.id)} & members:
            return False
        held = {(row["user_id"], row["role_id"]) for row in snapshot.rows("member_roles")}
        wanted = {
            (world.member.id, ids["role_moderator"]),
            (world.member.id, ids["role_low"]),
            (world.bot.id, ids["role_low"]),
        }
        if not wanted <= held:
            return False
        overrides = {(row["channel_id"], row["target_id"]) for row in snapshot.rows("channel_overrides")}
        if (ids["channel_hidden"], community) not in overrides:
            return False
        invites = {row["code"]: row for row in snapshot.rows("invites")}
        for kind in ("invite_plain", "invite_targeted"):
            row = invites.get(world.codes[kind])
            if row is None or not row["active"] or (row["max_uses"] and row["uses"] >= row["max_uses"]):
                return False
        uploads = {(row["uploader_id"], row["upload_id"]) for row in snapshot.rows("upload_parts")}
        if (world.owner.id, ids["upload"]) not in uploads:
            return False
        return ids["file"] in {row["id"] for row in snapshot.rows("files")}

    def clear_world(self, old: World, state: Snapshot) -> None:
        """Deletes the communities of a world's accounts (its own and those fuzzed calls created), so that the
        tables, dumped around every call, stay small. Its users and their tokens stay: they are few."""
        accounts = {account.id: account for account in (old.owner, old.member, old.outsider, old.bot, old.banned)}
        for row in state.rows("communities"):
            owner = accounts.get(row["owner_id"])
            if owner is None:
                continue
            principal = Principal(id=owner.id, name=owner.name, bot=owner.bot)
            with contextlib.suppress(Exception):  # already gone
                self.server.run(communities_service.delete_community(self.server.app, principal, row["id"]))

    def ensure_world(self) -> None:
        state = self.state
        if self.world is not None and state is not None:
            if self.checked is not None and state.same_as(self.checked, ignore=("server_workers",)):
                return  # nothing changed since the world was last found intact
            if self.world_intact(state):
                self.checked = state
                return
        started = time.perf_counter()
        if self.world is not None and state is not None:
            self.clear_world(self.world, state)
        self.world = self.build_world()
        self.rebuilds += 1
        self.drain()
        self.errors.take()
        self.state = self.checked = self.snapshots.take()
        self.seconds["world"] += time.perf_counter() - started
        assert self.world_intact(self.state), "a freshly built world must be intact"

    # --- one example

    def exercise(
        self, method: Method, plan: Msg, anonymous: str, audit_reason: str | None = None, bot: bool = True
    ) -> None:
        self.ensure_world()
        world = self.world
        assert world is not None
        request = method.request_class()()
        build(request, plan, world, int(time.time() * 1000))
        problems = []
        for caller in CALLERS:
            if caller == "bot" and not bot:
                continue
            if caller == "anonymous":
                who, metadata = f"anonymous ({anonymous})", anonymous_metadata(anonymous, world)
            else:
                who, metadata = caller, world.account(caller).metadata
            if audit_reason is not None:
                metadata = (*metadata, (AUDIT_REASON_KEY, audit_reason))
            problems += self.check_call(method, request, plan, who, metadata)
            if problems and not REPORT_PATH:
                break
        if problems:
            if REPORT_PATH:
                with open(REPORT_PATH, "a", encoding="utf-8") as report:
                    for problem in problems:
                        report.write(json.dumps(problem) + "\n")
            else:
                raise AssertionError("\n\n".join(p["text"] for p in problems))

    def check_call(self, method: Method, request, plan: Msg, who: str, metadata) -> list[dict]:
        extra = [(key, value) for key, value in metadata if key != "authorization"]
        before = self.state
        assert before is not None
        self.errors.take()
        started = time.perf_counter()
        outcome = self.invoke(method, request, metadata)
        called = time.perf_counter()
        self.calls += 1
        reason = outcome.error_info.reason if outcome.error_info else ""
        self.outcomes[(method.path, who.split(" ")[0], outcome.code.name, reason)] += 1
        self.drain()
        after = self.snapshots.take()
        self.state = after
        dumped = time.perf_counter()
        issues = []
        if outcome.code in (grpc.StatusCode.UNKNOWN, grpc.StatusCode.INTERNAL):
            issues.append(f"status {outcome.code.name}")
        if outcome.code != grpc.StatusCode.OK and outcome.problem:
            issues.append(outcome.problem)
        if who.startswith("anonymous") and outcome.code != grpc.StatusCode.UNAUTHENTICATED:
            issues.append(f"a caller without a usable token got {outcome.code.name}, not UNAUTHENTICATED")
        if after.pending:
            issues.append(f"{after.pending} rows still settling {SETTLE_SECONDS:.0f} s after the call ({SETTLING})")
        logged = self.errors.take()
        if logged:
            issues.append("the server logged errors")
        unhealthy = self.healthy()
        if unhealthy:
            issues.append(unhealthy)
        changes = diff(before, after) if outcome.code != grpc.StatusCode.OK else []
        self.seconds.update({"call": called - started, "dump": dumped - called, "checks": time.perf_counter() - dumped})
        if changes:
            issues.append("a failed call changed the database")
        if not issues:
            return []
        info = outcome.error_info
        text = "\n".join(
            [
                f"{method.path} [{self.backend}] as {who}: " + "; ".join(issues),
                f"status: {outcome.code.name} {outcome.details!r}"
                + (f" ErrorInfo(reason={info.reason!r}, domain={info.domain!r})" if info else ""),
                f"request: {request_text(request)}",
                *([f"metadata besides authorization: {extra}"] if extra else []),
                f"plan: {plan!r}",
                *changes,
                *logged,
            ]
        )
        return [
            {
                "method": method.path,
                "backend": self.backend,
                "caller": who,
                "issues": issues,
                "status": outcome.code.name,
                "details": outcome.details,
                "reason": info.reason if info else None,
                "request": request_text(request),
                "metadata": extra,
                "plan": repr(plan),
                "changes": changes,
                "log": logged,
                "text": text,
            }
        ]


@pytest.fixture(scope="module")
def fuzzer(server, grpc_channel, database_url) -> Iterator[Fuzzer]:
    fuzz = Fuzzer(server, grpc_channel, database_url)
    yield fuzz
    fuzz.close()


# ==================================================================================== the tests


def test_every_service_is_discovered():
    """The walk finds exactly the services the server registers and reports healthy (server.OUR_SERVICES): a
    broken walk cannot pass vacuously, and a service in the protos that the server does not list is caught here
    by name (the fuzz test would see its calls answered UNIMPLEMENTED)."""
    from communities.server import OUR_SERVICES

    found = {method.service.full_name for method in METHODS}
    assert found == set(OUR_SERVICES), (
        f"only in the protos: {found - set(OUR_SERVICES)}; only served: {set(OUR_SERVICES) - found}"
    )


@pytest.mark.parametrize("method", METHODS, ids=lambda method: method.path[1:])
def test_fuzz_method(fuzzer: Fuzzer, method: Method):
    plans = request_plans(method.input)

    @FUZZ_SETTINGS
    @given(data=st.data())
    def fuzz(data):
        started = time.perf_counter()
        plan = data.draw(plans, label="request")
        anonymous = data.draw(st.sampled_from(ANONYMOUS), label="caller without a usable token")
        audit_reason = data.draw(AUDIT_REASONS, label=AUDIT_REASON_KEY)
        bot = data.draw(st.sampled_from([False, False, True]), label="the bot calls too")
        fuzzer.seconds["generate"] += time.perf_counter() - started
        fuzzer.exercise(method, plan, anonymous, audit_reason, bot)

    fuzz()


# --- raw bytes that do not parse as the request message


def _tag(number: int, wire_type: int) -> bytes:
    return _varint(number << 3 | wire_type)


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _invalid_utf8(descriptor: pb_descriptor.Descriptor, depth: int = 0) -> bytes | None:
    """A message whose first string field (here or in a nested message) holds bytes that are not UTF-8."""
    for field_ in descriptor.fields:
        if field_.type == FD.TYPE_STRING:
            body = b"ok\xff\xfe\xc3("
            return _tag(field_.number, 2) + _varint(len(body)) + body
    if depth < 3:
        for field_ in descriptor.fields:
            if field_.type == FD.TYPE_MESSAGE and not _is_map(field_):
                inner = _invalid_utf8(field_.message_type, depth + 1)
                if inner is not None:
                    return _tag(field_.number, 2) + _varint(len(inner)) + inner
    return None


def undecodable_payloads(descriptor: pb_descriptor.Descriptor) -> dict[str, bytes]:
    payloads = {
        "garbage": b"\xff" * 11,  # a tag varint that never ends
        "field number zero": b"\x00\x01",
        "truncated varint": b"\x08\x80",
        "length past the end": b"\x0a\x10abc",
        "invalid wire type": b"\x0f\x00",
        "end group without start": b"\x0c",
    }
    utf8 = _invalid_utf8(descriptor)
    if utf8 is not None:  # a message without string fields has no such payload
        payloads["invalid utf-8 in a string field"] = utf8
    rng = random.Random(descriptor.full_name)
    for index in range(3):
        payloads[f"random garbage {index}"] = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 40)))
    parser = message_factory.GetMessageClass(descriptor).FromString
    undecodable = {}
    for name, payload in payloads.items():
        try:
            parser(payload)
        except Exception:
            undecodable[name] = payload  # only bytes that really do not parse are sent
    return undecodable


@dataclass(frozen=True)
class RawTarget:
    path: str
    descriptor: pb_descriptor.MethodDescriptor
    ours: bool  # needs a token (ours) or public (health, reflection)

    def __repr__(self) -> str:
        return self.path


def raw_targets() -> list[RawTarget]:
    targets = [RawTarget(method.path, method.descriptor, True) for method in METHODS]
    for service in health_pb2.DESCRIPTOR.services_by_name.values():
        targets += [RawTarget(f"/{service.full_name}/{m.name}", m, False) for m in service.methods]
    for service in reflection_pb2.DESCRIPTOR.services_by_name.values():
        for m in service.methods:
            targets.append(RawTarget(f"/{service.full_name}/{m.name}", m, False))
            # The server also serves it as grpc.reflection.v1 (same messages on the wire).
            v1 = service.full_name.replace(".v1alpha.", ".v1.")
            targets.append(RawTarget(f"/{v1}/{m.name}", m, False))
    return targets


def _identity(body: bytes) -> bytes:
    return body


def raw_call(channel: grpc.Channel, target: RawTarget, payload: bytes, metadata) -> Outcome:
    shape = (target.descriptor.client_streaming, target.descriptor.server_streaming)
    factory = {
        (False, False): channel.unary_unary,
        (False, True): channel.unary_stream,
        (True, False): channel.stream_unary,
        (True, True): channel.stream_stream,
    }[shape]
    call = factory(target.path, request_serializer=_identity, response_deserializer=_identity)
    argument = iter([payload]) if target.descriptor.client_streaming else payload
    try:
        response = call(argument, metadata=metadata, timeout=10)
        if target.descriptor.server_streaming:
            for _ in response:
                pass
    except grpc.RpcError as error:
        return _outcome(error)
    return Outcome(grpc.StatusCode.OK)


RAW_TARGETS = raw_targets()


@pytest.mark.parametrize("target", RAW_TARGETS, ids=lambda target: target.path[1:])
def test_undecodable_bytes(fuzzer: Fuzzer, target: RawTarget):
    started = time.perf_counter()
    try:
        check_undecodable(fuzzer, target)
    finally:
        fuzzer.seconds["raw bytes"] += time.perf_counter() - started


def check_undecodable(fuzzer: Fuzzer, target: RawTarget) -> None:
    fuzzer.ensure_world()
    world = fuzzer.world
    assert world is not None
    payloads = undecodable_payloads(target.descriptor.input_type)
    assert payloads
    failures = []
    callers = [("owner", world.owner.metadata)] if target.ours else [("nobody", ())]
    if target.ours:
        callers.append(("nobody", ()))
    for name, payload in payloads.items():
        for who, metadata in callers:
            before = fuzzer.state
            assert before is not None
            fuzzer.errors.take()
            outcome = raw_call(fuzzer.channel, target, payload, metadata)
            fuzzer.drain()
            after = fuzzer.snapshots.take()
            fuzzer.state = after
            # Authentication comes first for our methods; health and reflection need no token.
            unauthenticated = target.ours and who == "nobody"
            expected = grpc.StatusCode.UNAUTHENTICATED if unauthenticated else grpc.StatusCode.INVALID_ARGUMENT
            issues = []
            if outcome.code != expected:
                issues.append(f"expected {expected.name}, got {outcome.code.name} {outcome.details!r}")
            elif outcome.problem:
                issues.append(outcome.problem)
            logged = fuzzer.errors.take()
            if logged:
                issues.append("the server logged errors: " + " | ".join(logged))
            unhealthy = fuzzer.healthy()
            if unhealthy:
                issues.append(unhealthy)
            changes = diff(before, after)
            if changes:
                issues.append("the database changed: " + " ".join(changes))
            if issues:
                failures.append(
                    f"{target.path} [{fuzzer.backend}] {name} {payload[:40]!r} as {who}: {'; '.join(issues)}"
                )
    if REPORT_PATH and failures:
        with open(REPORT_PATH, "a", encoding="utf-8") as report:
            for failure in failures:
                report.write(json.dumps({"method": target.path, "backend": fuzzer.backend, "text": failure}) + "\n")
        return
    assert not failures, "\n".join(failures)
