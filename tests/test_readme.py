"""The README's Python example runs as written (on a small file standing in for pairs.jsonl)."""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
sys.path.insert(0, str(Path(__file__).parent / "stages"))


@pytest.mark.slow
def test_python_example_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from toy_data import write_toy

    text = README.read_text(encoding="utf-8")
    block = re.search(r"## Python API.*?```python\n(.*?)```", text, re.S)
    assert block, "no Python example under '## Python API'"
    write_toy(tmp_path / "pairs.jsonl", 120, flip_every=5)
    monkeypatch.chdir(tmp_path)
    os.environ.setdefault("TQDM_DISABLE", "1")
    exec(compile(block.group(1), str(README), "exec"), {})  # our own README
    assert (tmp_path / "my-model" / "rewardlab.json").is_file()
