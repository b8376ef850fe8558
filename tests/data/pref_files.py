"""Writers of small preference files in every supported layout, for the data tests."""

from __future__ import annotations

import csv
import gzip
import io
import json
import random
from pathlib import Path
from typing import Any

EXPLICIT = [
    {"prompt": "What is 2+2?", "chosen": "4", "rejected": "5", "votes": 3},
    {"prompt": "Name a colour.", "chosen": "Blue.", "rejected": "Seven.", "votes": 2},
    {"prompt": "Say hi.", "chosen": "Hi!", "rejected": "No.", "votes": 1},
]

HH = [
    {"chosen": "\n\nHuman: Hi there\n\nAssistant: Hello! How can I help?",
     "rejected": "\n\nHuman: Hi there\n\nAssistant: Go away."},
    {"chosen": "\n\nHuman: Tell me a joke\n\nAssistant: Which kind?\n\nHuman: A pun"
               "\n\nAssistant: I used to be a banker, but I lost interest.",
     "rejected": "\n\nHuman: Tell me a joke\n\nAssistant: Which kind?\n\nHuman: A pun"
                 "\n\nAssistant: No."},
]

CONVERSATIONAL = [
    {"chosen": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}],
     "rejected": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Bye."}]},
]


def write_bytes(path: Path, data: bytes) -> Path:
    if path.name.endswith(".gz"):
        # mtime=0: the same bytes on every run.
        data = gzip.compress(data, mtime=0)
    path.write_bytes(data)
    return path


def write_jsonl(path: Path, records: list[Any]) -> Path:
    text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
    return write_bytes(path, text.encode("utf-8"))


def write_json(path: Path, records: list[Any]) -> Path:
    return write_bytes(path, json.dumps(records, indent=1, ensure_ascii=False).encode("utf-8"))


def write_csv(path: Path, records: list[dict[str, Any]]) -> Path:
    buffer = io.StringIO(newline="")
    writer = csv.DictWriter(buffer, fieldnames=list(records[0]))
    writer.writeheader()
    writer.writerows(records)
    return write_bytes(path, buffer.getvalue().encode("utf-8"))


def write_parquet(path: Path, records: list[dict[str, Any]]) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    sink = pa.BufferOutputStream()
    pq.write_table(pa.Table.from_pylist(records), sink)
    return write_bytes(path, sink.getvalue().to_pybytes())


WRITERS = {"jsonl": write_jsonl, "json": write_json, "csv": write_csv, "parquet": write_parquet}


def write(path: Path, records: list[Any]) -> Path:
    """Write ``records`` in the format the file name says (``.jsonl``, ``.csv.gz``, ...)."""
    kind = path.name.removesuffix(".gz").rsplit(".", 1)[-1]
    return WRITERS[kind](path, records)


def good_sides(seed: int, n: int) -> list[str]:
    """Which response is the good one, row by row: a random mix of "a" and "b"."""
    rng = random.Random(seed)
    return [rng.choice("ab") for _ in range(n)]


def sides(good: str, i: int) -> tuple[str, str]:
    """(a text, b text) of row ``i`` with the good response on side ``good``."""
    texts = (f"good answer {i}", f"bad answer {i}")
    return texts if good == "a" else texts[::-1]
