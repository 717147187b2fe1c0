from google.protobuf import empty_pb2 as _empty_pb2
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Optional as _Optional

DESCRIPTOR: _descriptor.FileDescriptor

class UploadFilePart(_message.Message):
    __slots__ = ("upload_id", "part", "data")
    UPLOAD_ID_FIELD_NUMBER: _ClassVar[int]
    PART_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    upload_id: int
    part: int
    data: bytes
    def __init__(self, upload_id: _Optional[int] = ..., part: _Optional[int] = ..., data: _Optional[bytes] = ...) -> None: ...

class UploadedFileRef(_message.Message):
    __slots__ = ("id", "name", "part_count")
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    PART_COUNT_FIELD_NUMBER: _ClassVar[int]
    id: int
    name: str
    part_count: int
    def __init__(self, id: _Optional[int] = ..., name: _Optional[str] = ..., part_count: _Optional[int] = ...) -> None: ...

class DownloadFilePart(_message.Message):
    __slots__ = ("file_id", "offset", "length")
    FILE_ID_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    LENGTH_FIELD_NUMBER: _ClassVar[int]
    file_id: int
    offset: int
    length: int
    def __init__(self, file_id: _Optional[int] = ..., offset: _Optional[int] = ..., length: _Optional[int] = ...) -> None: ...

class FilePart(_message.Message):
    __slots__ = ("data", "size")
    DATA_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    data: bytes
    size: int
    def __init__(self, data: _Optional[bytes] = ..., size: _Optional[int] = ...) -> None: ...
