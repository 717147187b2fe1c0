"""Channel kinds. Numbers match the proto's ChannelType."""

import enum


class ChannelType(enum.IntEnum):
    TEXT = 0
    VOICE = 1
    CATEGORY = 2
