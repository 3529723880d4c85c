"""Arrow IPC files as ``datasets`` writes them (the streaming format), read without trusting
them: before any record batch is decoded, one pass over the messages checks that the first is a
schema, counts the rows each batch declares and refuses compressed bodies (whose decompressed
size is whatever the file claims; ``datasets`` never compresses). Uncompressed bodies are slices
of the memory-mapped file, so decoding allocates no more than the file holds. An Arrow IPC
*file* (``ARROW1`` magic, a stream with a footer) is read as the stream inside it.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from poisonguard.errors import InputError

__all__ = ["Stream", "open_stream"]

_FILE_MAGIC = b"ARROW1"


@dataclass(frozen=True)
class Stream:
    """An Arrow stream checked by :func:`open_stream`: its schema and declared row count."""

    path: Path
    schema: Any  # pyarrow.Schema
    rows: int
    offset: int

    def batches(self) -> Iterator[Any]:
        """The record batches, decoded one at a time."""
        import pyarrow as pa

        try:
            with pa.memory_map(str(self.path)) as mm:
                reader = pa.ipc.open_stream(mm.read_buffer()[self.offset:])
                if not reader.schema.equals(self.schema):
                    raise InputError(f"{self.path}: changed while it was read; run the command "
                                     "again")
                yield from reader
        except (pa.ArrowException, OSError) as exc:
            raise InputError(f"{self.path}: cannot read as an Arrow stream: {_first(exc)}") from None


def _first(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _field(meta: bytes, table: int, slot: int) -> int:
    """Offset of field ``slot`` within the flatbuffer table at ``table`` (0: absent)."""
    vtable = table - struct.unpack_from("<i", meta, table)[0]
    size = struct.unpack_from("<H", meta, vtable)[0]
    if 4 + 2 * slot >= size:
        return 0
    return int(struct.unpack_from("<H", meta, vtable + 4 + 2 * slot)[0])


def _batch_header(meta: bytes, dictionary: bool) -> tuple[int, int]:
    """``(rows, compressed)`` of a record batch (or dictionary batch) message, from its
    flatbuffer: Message.header (slot 2) is the RecordBatch, or a DictionaryBatch whose data
    (slot 1) is; RecordBatch.length is slot 0, RecordBatch.compression slot 3."""
    root = struct.unpack_from("<I", meta, 0)[0]
    at = _field(meta, root, 2)
    if not at:
        raise ValueError("a record batch message without a header")
    header = root + at + struct.unpack_from("<I", meta, root + at)[0]
    if dictionary:
        at = _field(meta, header, 1)
        if not at:
            raise ValueError("a dictionary batch without data")
        header = header + at + struct.unpack_from("<I", meta, header + at)[0]
    at = _field(meta, header, 0)
    rows = struct.unpack_from("<q", meta, header + at)[0] if at else 0
    return (0 if dictionary else rows), _field(meta, header, 3)


def open_stream(path: Path) -> Stream:
    """Check an Arrow stream's messages (module docstring) without decoding a batch."""
    import pyarrow as pa

    try:
        with pa.memory_map(str(path)) as mm:
            offset = 8 if mm.read(8).startswith(_FILE_MAGIC) else 0
            mm.seek(offset)
            reader = pa.ipc.MessageReader.open_stream(mm)
            first = reader.read_next_message()
            if first is None or first.type != "schema":
                raise InputError(f"{path}: not an Arrow stream (no schema message first)")
            schema = pa.ipc.read_schema(first)
            rows = 0
            for msg in iter(reader.read_next_message, None):
                if msg.type not in ("record batch", "dictionary"):
                    raise InputError(f"{path}: an Arrow message of type {msg.type!r} where record "
                                     "batches were expected")
                n, compressed = _batch_header(msg.metadata.to_pybytes(),
                                              msg.type == "dictionary")
                if compressed:
                    raise InputError(f"{path}: holds compressed Arrow record batches, which are "
                                     "not read (their size is not known before decompressing)")
                if n < 0:
                    raise InputError(f"{path}: a record batch declares {n} rows")
                rows += n
    except InputError:
        raise
    except StopIteration:
        raise InputError(f"{path}: not an Arrow stream (empty)") from None
    except (pa.ArrowException, OSError, ValueError, struct.error) as exc:
        raise InputError(f"{path}: cannot read as an Arrow stream: {_first(exc)}") from None
    return Stream(path, schema, rows, offset)
