"""The apply log's changes, stored as zlib-compressed JSON (as Helm keeps its release records).

The history is written once per organization per apply and read only by `nexus history`; as JSON it was
most of a fleet's database (a first apply of 1,000 facilities logged 107 MB of it, 45% of the SQLite file,
parsed into `jsonb` and compressed again by PostgreSQL in every transaction). Packed, it is an eighth of
that, compressed on the thread that prepares the next organization, off the transaction's path.
"""

from __future__ import annotations

import json
import zlib
from typing import Any

import sqlalchemy as sa

from plan_apply.database.dialects import EncodedJSON

__all__ = ["Packed", "PackedJSON", "pack", "unpack"]

LEVEL = 3
"""zlib's level: 8× smaller than the JSON at ~230 MB/s; level 6 is 9.6× at ~95 MB/s."""


class Packed:
    """A value already packed (`data`), bound to a `PackedJSON` column as it is: an apply packs the next
    organization's history entry while the current one commits."""

    __slots__ = ("data",)

    def __init__(self, data: bytes) -> None:
        self.data = data

    @classmethod
    def of(cls, value: Any) -> Packed:
        return cls(pack(value))


def pack(value: Any) -> bytes:
    """`value` as JSON (UTF-8), zlib-compressed: the bytes a `PackedJSON` column holds."""
    return zlib.compress(EncodedJSON.of(value).text.encode(), LEVEL)


def unpack(data: bytes | memoryview | str) -> Any:
    """The value `pack` packed, as any driver returns the column's bytes. An entry stored as JSON text is
    read as it is: a nexus older than revision 0008, still running while another upgraded the schema,
    writes one, and SQLite stores it whatever the column's type (PostgreSQL refuses it)."""
    return json.loads(data if isinstance(data, str) else zlib.decompress(data))


class PackedJSON(sa.types.TypeDecorator[Any]):
    """A JSON value stored packed (`pack`), in a binary column on every backend."""

    impl = sa.LargeBinary
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: sa.engine.Dialect) -> bytes | None:
        if value is None:
            return None
        return value.data if type(value) is Packed else pack(value)

    def process_result_value(self, value: Any, dialect: sa.engine.Dialect) -> Any:
        return None if value is None else unpack(value)
