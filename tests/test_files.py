"""Atomic writes under faults: a full disk, a crash between writing and publishing, non-finite
numbers, and the leftovers of a killed writer."""

from __future__ import annotations

import errno
import json
import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from rewardlab.faults import parse_fault, reset_faults
from rewardlab.files import (
    DiskFullError,
    atomic_path,
    atomic_write_bytes,
    is_disk_full,
    read_npy,
    sweep_temporaries,
    write_folder_atomically,
    write_json,
    write_jsonl,
    write_npy,
    write_table,
)


def _enospc(*_: object, **__: object) -> None:
    raise OSError(errno.ENOSPC, "No space left on device")


def _only(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


# -- disk full: injected into the write path (runs everywhere) -------------------------------

@pytest.mark.parametrize("writer", ["bytes", "json", "table", "npy"])
def test_disk_full_names_the_file_and_keeps_the_old_one(tmp_path: Path, writer: str,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / f"out.{writer}"
    target.write_bytes(b"the old, complete result")
    # The disk fills while the data goes to the temporary file, whoever writes it.
    monkeypatch.setattr("os.fsync", _enospc)
    write = {"bytes": lambda: atomic_write_bytes(target, b"new"),
             "json": lambda: write_json(target, {"a": 1}),
             "table": lambda: write_table(target, pa.table({"x": [1, 2]})),
             "npy": lambda: write_npy(target, np.arange(3.0))}[writer]
    with pytest.raises(DiskFullError) as info:
        write()
    assert info.value.filename == str(target)
    assert str(target) in str(info.value) and "no space left" in str(info.value)
    assert target.read_bytes() == b"the old, complete result"
    assert _only(tmp_path) == [target.name]  # no temporary file left behind


def test_a_writer_that_only_says_so_in_words_is_a_full_disk_too(tmp_path: Path) -> None:
    # safetensors raises its own type with the OS message inside; numpy gives no errno at all.
    class SafetensorError(Exception):
        pass

    with pytest.raises(DiskFullError), atomic_path(tmp_path / "w.safetensors"):
        raise SafetensorError("Error while serializing: I/O error: No space left on device "
                              "(os error 28)")
    assert _only(tmp_path) == []
    assert not is_disk_full(ValueError("bad header"))
    with pytest.raises(ValueError, match="bad header"), atomic_path(tmp_path / "x"):
        raise ValueError("bad header")  # other errors pass through unchanged


def test_disk_full_in_a_folder_write_names_the_folder(tmp_path: Path) -> None:
    target = tmp_path / "model"

    def write(folder: Path) -> None:
        (folder / "weights.bin").write_bytes(b"w")
        atomic_write_bytes(folder / "config.json", b"{}")
        _enospc()

    with pytest.raises(DiskFullError) as info:
        write_folder_atomically(target, write, marker="config.json", kind="model folder")
    assert info.value.filename == str(target)
    assert _only(tmp_path) == []


def test_the_fault_hook_injects_enospc_at_the_chosen_write(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REWARDLAB_FAULT", "write~second:after=0:enospc")
    reset_faults()
    write_json(tmp_path / "first.json", 1)  # does not match: written
    with pytest.raises(DiskFullError, match=r"second\.json"):
        write_json(tmp_path / "second.json", 2)
    write_json(tmp_path / "second.json", 2)  # fires once only
    assert _only(tmp_path) == ["first.json", "second.json"]
    reset_faults()


def test_fault_specs_are_checked() -> None:
    assert parse_fault("write~figures:after=3:enospc") == ("write", "figures", 3, "enospc")
    assert parse_fault("model:after=0") == ("model", "", 0, "kill")
    for bad in ("model", "model:after=x", "model:after=1:explode", "model:3"):
        with pytest.raises(ValueError, match="POINT"):
            parse_fault(bad)


# -- disk full: a real, small disk (where a tmpfs can be mounted) -----------------------------

def test_a_real_full_disk(tmpfs: Callable[..., Path]) -> None:
    disk = tmpfs("256k")
    ballast = disk / "ballast"
    ballast.write_bytes(b"\0" * 200_000)
    big = np.random.default_rng(0).normal(size=20_000)  # 160 kB: does not fit beside it
    for name, write in [("a.npy", lambda t: write_npy(t, big)),
                        ("b.parquet", lambda t: write_table(t, pa.table({"x": big}))),
                        ("c.json", lambda t: write_json(t, big.tolist()))]:
        with pytest.raises(DiskFullError, match=name):
            write(disk / name)
    assert _only(disk) == ["ballast"]  # nothing half-written, under any name
    ballast.unlink()  # space freed: the same write now succeeds
    write_npy(disk / "a.npy", big)
    assert np.array_equal(np.load(disk / "a.npy"), big)


# -- what JSON can hold ------------------------------------------------------------------------

def test_non_finite_numbers_are_written_as_null(tmp_path: Path) -> None:
    obj = {"nan": float("nan"), "inf": float("inf"), "ninf": -np.inf,
           "f32": np.float32("nan"), "arr": np.array([1.0, np.inf]), "ok": 0.5}
    write_json(tmp_path / "a.json", obj)
    assert json.loads((tmp_path / "a.json").read_text()) == {
        "nan": None, "inf": None, "ninf": None, "f32": None, "arr": [1.0, None], "ok": 0.5}
    write_jsonl(tmp_path / "b.jsonl", [obj])
    text = (tmp_path / "b.jsonl").read_text()
    assert "Infinity" not in text and "NaN" not in text  # strict JSON any reader accepts
    assert json.loads(text)["arr"] == [1.0, None]


# -- leftovers of a killed writer --------------------------------------------------------------

def test_sweep_removes_only_what_a_killed_writer_left(tmp_path: Path) -> None:
    keep = ["result.json", ".hidden.tmp", ".notes", "x.tmp"]
    for name in keep:
        (tmp_path / name).write_text("mine")
    sub = tmp_path / "strength" / ".partial" / "abc"
    sub.mkdir(parents=True)
    left = [tmp_path / ".result.json.k2j_x9a1.tmp", sub / ".job-0001.npy.a1b2c3d4.tmp"]
    for path in left:
        path.write_text("half")
    (tmp_path / ".model.abcd1234.tmp").mkdir()  # a new folder, maybe half-written
    (tmp_path / "model").mkdir()
    (tmp_path / ".model.old-0123abcd").mkdir()  # replaced: the swap finished
    removed = sweep_temporaries(tmp_path)
    assert len(removed) == 4
    assert _only(tmp_path) == sorted([*keep, "model", "strength"])
    assert list(sub.iterdir()) == []


def test_sweep_puts_back_a_folder_a_kill_left_renamed_aside(tmp_path: Path) -> None:
    # Killed between renaming the old folder aside and renaming the new one in: the old one
    # is the only whole copy, so it goes back; the new one may be half-written, so it goes.
    (tmp_path / ".model.old-0123abcd").mkdir()
    (tmp_path / ".model.old-0123abcd" / "weights").write_text("old and whole")
    (tmp_path / ".model.k2j_x9a1.tmp").mkdir()
    sweep_temporaries(tmp_path)
    assert _only(tmp_path) == ["model"]
    assert (tmp_path / "model" / "weights").read_text() == "old and whole"


def test_a_damaged_partial_result_is_recomputed_not_read(tmp_path: Path,
                                                         caplog: pytest.LogCaptureFixture) -> None:
    file = tmp_path / "job.npy"
    write_npy(file, np.ones((2, 3)))
    assert read_npy(file, shape=(2, 3)) is not None
    with caplog.at_level(logging.WARNING, logger="rewardlab"):
        assert read_npy(file, shape=(3, 2)) is None
        file.write_bytes(file.read_bytes()[:60])  # truncated
        assert read_npy(file, shape=(2, 3)) is None
    assert "recomputing" in caplog.text
    assert read_npy(tmp_path / "none.npy", shape=(1,)) is None
