"""The CLI guides: where to start, did-you-mean, one-line errors, Ctrl-C, broken pipes, file
modes that teammates can read, and a Python API that selects by mask."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from rewardlab.cli import main
from rewardlab.files import atomic_write_text, write_folder_atomically
from rewardlab.models import Pairs

PAIRS = [{"prompt": f"q{i}", "chosen": f"good {i}", "rejected": f"bad {i}"} for i in range(6)]


def _data(tmp_path: Path) -> Path:
    path = tmp_path / "d.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in PAIRS))
    return path


def test_help_says_where_to_start(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "rewardlab run DATA... -o OUT" in capsys.readouterr().out


def test_unknown_flag_gets_a_suggestion_under_the_subcommand(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as err:
        main(["strength", str(_data(tmp_path)), "-o", str(tmp_path / "o"), "--member", "3"])
    assert err.value.code == 2
    text = capsys.readouterr().err
    assert "usage: rewardlab strength" in text and "did you mean --members?" in text


def test_output_path_that_is_a_file_is_a_clear_error(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = _data(tmp_path)
    assert main(["strength", str(data), "-o", str(data), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "-o/--out" in err and "is a file" in err and "Traceback" not in err


def test_files_and_folders_respect_the_umask(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        path = atomic_write_text(tmp_path / "a.json", "{}")
        folder = write_folder_atomically(tmp_path / "m", lambda d: (d / "x").write_text("1"),
                                         marker="x", kind="test folder")
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert stat.S_IMODE(folder.stat().st_mode) == 0o755


def _cli(*args: str, **kw: object) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "rewardlab.cli", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


def test_ctrl_c_prints_one_line_and_exits_130(tmp_path: Path) -> None:
    code = ("import sys, rewardlab.cli as c\n"
            "def boom(*a, **k):\n    raise KeyboardInterrupt\n"
            "c._run = boom\nsys.exit(c.main(sys.argv[1:]))\n")
    proc = subprocess.run([sys.executable, "-c", code, "inspect", str(_data(tmp_path))],
                          capture_output=True, text=True)
    assert proc.returncode == 130
    assert proc.stderr.strip() == "interrupted; rerun the same command to resume"


def test_broken_pipe_exits_quietly(tmp_path: Path) -> None:
    big = tmp_path / "big.jsonl"
    big.write_text("".join(json.dumps({"prompt": f"q{i}", "chosen": "a" * 50,
                                       "rejected": f"b{i}"}) + "\n" for i in range(3000)))
    proc = _cli("inspect", str(big), "--json")
    assert proc.stdout is not None
    proc.stdout.readline()
    proc.stdout.close()  # the reader goes away, as `| head -1` does
    _, err = proc.communicate(timeout=120)
    assert "Traceback" not in err and "BrokenPipeError" not in err


@pytest.mark.parametrize("kind", ["numpy", "torch"])
def test_pairs_subset_by_boolean_mask(kind: str) -> None:
    pairs = Pairs([f"p{i}" for i in range(4)], [f"c{i}" for i in range(4)],
                  [f"r{i}" for i in range(4)])
    mask = np.array([False, True, False, True])
    sel = pairs.subset(mask if kind == "numpy" else torch.as_tensor(mask))
    assert list(sel.prompt) == ["p1", "p3"]
    with pytest.raises(ValueError, match="shape"):
        pairs.subset(np.array([True, False]))


def test_winner_layout_through_the_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # SHP's convention: labels is 1 when A wins. Without --winner-values the default reads 0/1
    # as the index of the better response, so the labels would come out reversed.
    rows = [{"q": f"q{i}", "A": f"first {i}", "B": f"second {i}", "labels": i % 2}
            for i in range(6)] + [{"q": "tie", "A": "x", "B": "y", "labels": "tie"}]
    data = tmp_path / "shp.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    mapping = "prompt=q,a=A,b=B,winner=labels"
    assert main(["inspect", str(data), "--map", mapping, "--winner-values", "1=a,0=b,tie=tie",
                 "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["pairs"] == 6 and result["ties_dropped"] == 1
    assert result["by_format"] == {"winner": 6}
    # A winner table without a winner column is refused, naming the flag.
    assert main(["inspect", str(data), "--winner-values", "1=a"]) == 2
    assert "--winner-values" in capsys.readouterr().err


def test_run_verdict_never_names_a_winner_the_interval_cannot_tell_apart() -> None:
    from rewardlab.stages.run import verdict_lines

    best = {"method": "flip", "valid_accuracy_mean": 0.61, "gain_over_baseline": 0.012,
            "gain_split": "test", "gain_ci95": [-0.01, 0.03], "gain_pairs": 22,
            "distinguishable": False}
    assert verdict_lines({"best_method": best})[0].startswith(
        "no method is distinguishable from the baseline on 22 test pairs")
    best.update(gain_ci95=[0.004, 0.03], distinguishable=True)
    assert verdict_lines({"best_method": best})[0].startswith(
        "best method: flip, picked on validation")
