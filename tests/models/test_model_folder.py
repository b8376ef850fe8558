"""Damaged, foreign and future model folders get a clear error (from the library and from the
CLI), never a traceback and never weights read from a damaged file."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from rewardlab.cli import main
from rewardlab.config import ModelConfig
from rewardlab.layout import MODEL_INFO_FILE
from rewardlab.models import build_reward_model, load_reward_model
from rewardlab.models.base import Pairs

WEIGHTS = "heads.safetensors"


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> Path:
    config = ModelConfig.from_dict({"members": 2, "epochs": 1, "batch_size": 16, "proj_dim": 8})
    model = build_reward_model(config, progress=False)
    n = range(40)
    model.fit(Pairs([f"question {i}" for i in n], [f"a helpful answer {i}" for i in n],
                    [f"no {i}" for i in n]))
    return model.save(tmp_path_factory.mktemp("saved") / "model")


def _edit_info(change: Callable[[dict], object], *, sign: bool = False) -> Callable[[Path], None]:
    """Change rewardlab.json; unsigned (no ``checksum``, as an older rewardlab wrote it) unless
    ``sign``: then the old checksum stays, and no longer matches."""
    def edit(folder: Path) -> None:
        info = json.loads((folder / MODEL_INFO_FILE).read_text())
        if not sign:
            info.pop("checksum", None)
        change(info)
        (folder / MODEL_INFO_FILE).write_text(json.dumps(info))
    return edit


def _flip_byte(at: int) -> Callable[[Path], None]:
    def flip(folder: Path) -> None:
        data = bytearray((folder / WEIGHTS).read_bytes())
        data[at] ^= 0x01
        (folder / WEIGHTS).write_bytes(bytes(data))
    return flip


def _truncate(folder: Path) -> None:
    data = (folder / WEIGHTS).read_bytes()
    (folder / WEIGHTS).write_bytes(data[: len(data) // 2])


def _unchecked(damage: Callable[[Path], None]) -> Callable[[Path], None]:
    """A folder from before checksums were recorded, then damaged: the reader must still fail
    cleanly."""
    def both(folder: Path) -> None:
        _edit_info(lambda i: i.pop("files"))(folder)
        damage(folder)
    return both


DAMAGES: dict[str, tuple[Callable[[Path], None], str]] = {
    "folder missing": (lambda f: shutil.rmtree(f), "no such model folder"),
    "info missing": (lambda f: (f / MODEL_INFO_FILE).unlink(),
                     "not a rewardlab model folder (no rewardlab.json)"),
    "info not JSON": (lambda f: (f / MODEL_INFO_FILE).write_text('{"backend": '),
                      "rewardlab.json: not valid JSON"),
    "info not UTF-8": (lambda f: (f / MODEL_INFO_FILE).write_bytes(b"\xff\xfe{"),
                       "rewardlab.json: not valid JSON"),
    "info a list": (lambda f: (f / MODEL_INFO_FILE).write_text("[1, 2]"), "malformed"),
    "no backend": (_edit_info(lambda i: i.pop("backend")), "malformed"),
    "config not an object": (_edit_info(lambda i: i.update(config="x")), "malformed"),
    "newer format": (_edit_info(lambda i: i.update(format_version=2)),
                     "format version 2 is newer than this rewardlab reads"),
    "version a string": (_edit_info(lambda i: i.update(format_version="1")),
                         "malformed format_version"),
    "version a bool": (_edit_info(lambda i: i.update(format_version=True)),
                       "malformed format_version"),
    "foreign backend": (_edit_info(lambda i: i.update(backend="xgboost")),
                        "unknown backend 'xgboost'"),
    "weights missing": (lambda f: (f / WEIGHTS).unlink(), "missing from the model folder"),
    "weights truncated": (_truncate, "damaged (its checksum differs"),
    "weights bit-flipped": (_flip_byte(-3), "damaged (its checksum differs"),
    "header bit-flipped": (_flip_byte(20), "damaged (its checksum differs"),
    "a setting edited": (_edit_info(lambda i: i["config"].update(max_length=258), sign=True),
                         "rewardlab.json: damaged or edited"),
    "checksum list escapes": (_edit_info(lambda i: i["files"].update({"../x": "y"})),
                              "outside the folder"),
    "old folder, truncated": (_unchecked(_truncate),
                              "cannot load this embedding model folder; it is damaged"),
    "old folder, header flipped": (_unchecked(_flip_byte(20)), "it is damaged"),
    "old folder, pickle inside": (_unchecked(lambda f: (f / WEIGHTS).write_bytes(
        b"\x80\x04\x95" + b"\0" * 64)), "it is damaged"),
    "settings do not fit": (_unchecked(_edit_info(lambda i: i.update(in_dim=7))),
                            "it is damaged"),
    "settings invalid": (_unchecked(_edit_info(lambda i: i["config"].update(members=-1))),
                         "--members"),
}


def _damaged(saved: Path, tmp_path: Path, damage: Callable[[Path], None]) -> Path:
    folder = tmp_path / "model"
    shutil.copytree(saved, folder)
    damage(folder)
    return folder


@pytest.mark.parametrize("case", list(DAMAGES))
def test_a_damaged_folder_is_a_clear_error(case: str, saved: Path, tmp_path: Path) -> None:
    damage, message = DAMAGES[case]
    folder = _damaged(saved, tmp_path, damage)
    with pytest.raises((ValueError, FileNotFoundError)) as info:
        load_reward_model(folder, progress=False)
    assert message in str(info.value)
    assert str(folder) in str(info.value)  # says which folder


def test_the_intact_folder_loads_and_its_checksums_are_recorded(saved: Path,
                                                                 tmp_path: Path) -> None:
    info = json.loads((saved / MODEL_INFO_FILE).read_text())
    assert list(info["files"]) == [WEIGHTS]
    assert info["files"][WEIGHTS].startswith("blake2b:") and info["checksum"].startswith("blake2b")
    pairs = Pairs(["q"], ["a"], ["b"])
    assert load_reward_model(saved, progress=False).score(pairs).shape == (2, 1)


@pytest.mark.parametrize("case", ["info missing", "newer format", "weights bit-flipped",
                                  "a setting edited", "old folder, pickle inside",
                                  "foreign backend"])
def test_evaluate_reports_one_line_without_a_traceback(
        case: str, saved: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    damage, message = DAMAGES[case]
    folder = _damaged(saved, tmp_path, damage)
    data = tmp_path / "pairs.jsonl"
    data.write_text(json.dumps({"prompt": "q", "chosen": "a", "rejected": "b"}) + "\n")
    assert main(["evaluate", str(folder), str(data), "-o", str(tmp_path / "out"),
                 "--quiet"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("rewardlab evaluate: error: ") and message in err
    assert "Traceback" not in err and len(err.splitlines()) == 1
