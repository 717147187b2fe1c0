"""Channel kinds. Numbers match the proto's ChannelType."""

import enum


class ChannelType(enum.IntEnum):
    TEXT = 1
    VOICE = 2
    CATEGORY = 3
