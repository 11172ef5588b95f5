"""Read the records of an offline W&B run file (``run-*.wandb``) without a W&B server.

The file is W&B's 7-byte header followed by a LevelDB-style log: 32 KiB blocks of chunks, each
``crc32 (4) | length (2, little endian) | type (1)``; type 1 = whole record, 2/3/4 = first/middle/last
piece. Records are ``wandb_internal_pb2.Record`` protobufs.
"""

from __future__ import annotations

import json
import struct
import time
from pathlib import Path
from typing import Any

from wandb.proto import wandb_internal_pb2

BLOCK = 32 * 1024
HEADER = 7


def records(path: Path) -> list[wandb_internal_pb2.Record]:
    data = path.read_bytes()
    assert data[:4] == b":W&B", f"{path} is not a W&B run file"
    out, pos, pieces = [], HEADER, b""
    while pos + 7 <= len(data):
        room = BLOCK - pos % BLOCK
        if room < 7:  # block trailer padding
            pos += room
            continue
        length, kind = struct.unpack_from("<HB", data, pos + 4)
        chunk = data[pos + 7 : pos + 7 + length]
        pos += 7 + length
        if kind == 0 and length == 0:
            continue
        pieces += chunk
        if kind in (1, 4):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pieces)
            out.append(record)
            pieces = b""
    return out


def history(path: Path) -> list[dict[str, Any]]:
    """Every ``wandb.log`` row as a dict of key -> decoded value."""
    rows = []
    for record in records(path):
        if record.WhichOneof("record_type") == "history":
            rows.append(
                {
                    item.key or "/".join(item.nested_key): json.loads(item.value_json)
                    for item in record.history.item
                }
            )
    return rows


def wait_for_exit_record(path: Path, timeout: float = 60.0) -> Path:
    """W&B's service may still be flushing after ``wandb.finish()`` returns: wait for the run's end."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if any(r.WhichOneof("record_type") == "exit" for r in records(path)):
                return path
        except Exception:  # a record half-written at the end of the file
            pass
        time.sleep(0.2)
    raise TimeoutError(f"{path} has no exit record after {timeout} s")
