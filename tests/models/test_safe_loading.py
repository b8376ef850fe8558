"""Loading never unpickles: weights come from safetensors, settings from JSON.

A static check of the source (no pickle module, no ``torch.load`` without ``weights_only=True``,
no ``np.load`` with pickles, no remote code), and live checks with hostile files: a backbone
and a saved model whose weights are a pickle that would run code if unpickled.
"""

from __future__ import annotations

import ast
import json
import pickle
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch

import rewardlab
from rewardlab.cli import main
from rewardlab.config import ModelConfig
from rewardlab.layout import MODEL_INFO_FILE
from rewardlab.models import build_reward_model, load_reward_model
from rewardlab.models.base import Pairs
from rewardlab.models.finetune import FinetuneRewardModel

SRC = Path(rewardlab.__file__).parent
UNPICKLERS = {"dill", "cloudpickle", "joblib", "shelve", "marshal", "jsonpickle"}
"""Modules whose only use would be to unpickle. ``pickle`` itself may be imported (the CLI
catches its ``UnpicklingError``) but never called to load."""
PICKLE_LOADS = ("pickle.load", "pickle.loads", "pickle.Unpickler", "_pickle.load",
                "_pickle.loads", "_pickle.Unpickler")


def _calls(tree: ast.AST, name: str) -> Iterator[ast.Call]:
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and ast.unparse(node.func).endswith(name):
            yield node


def _keyword(call: ast.Call, name: str) -> Any:
    for kw in call.keywords:
        if kw.arg == name:
            return ast.literal_eval(kw.value) if isinstance(kw.value, ast.Constant) else kw.value
    return None


def test_the_source_never_unpickles() -> None:
    problems = []
    for path in sorted(SRC.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        where = path.relative_to(SRC.parent)
        for node in ast.walk(tree):
            if isinstance(node, ast.Import | ast.ImportFrom):
                names = [a.name for a in node.names] + [getattr(node, "module", None) or ""]
                if {n.split(".")[0] for n in names} & UNPICKLERS:
                    problems.append(f"{where}:{node.lineno}: imports an unpickler")
        for call in (c for c in ast.walk(tree) if isinstance(c, ast.Call)):
            if ast.unparse(call.func) in PICKLE_LOADS:
                problems.append(f"{where}:{call.lineno}: unpickles")
        for call in _calls(tree, "torch.load"):
            if _keyword(call, "weights_only") is not True:
                problems.append(f"{where}:{call.lineno}: torch.load without weights_only=True")
        for call in _calls(tree, ".load"):
            if ast.unparse(call.func) in ("np.load", "numpy.load") and \
                    _keyword(call, "allow_pickle") is not False:
                problems.append(f"{where}:{call.lineno}: np.load without allow_pickle=False")
        for call in (c for c in ast.walk(tree) if isinstance(c, ast.Call)):
            if _keyword(call, "trust_remote_code") not in (None, False):
                problems.append(f"{where}:{call.lineno}: runs a model folder's own code")
    assert not problems, "\n".join(problems)


class Payload:
    """Unpickling this makes a folder: proof that a pickle ran code."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        import os

        return os.mkdir, (str(self.marker),)


@pytest.fixture
def spy(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Every ``torch.load`` call's ``weights_only`` (torch's default when not passed); any use
    of ``pickle.load(s)`` fails the test."""
    seen: list[Any] = []
    real = torch.load

    def load(*args: Any, **kwargs: Any) -> Any:
        seen.append(kwargs.get("weights_only", "default"))
        return real(*args, **kwargs)

    def refuse(*_: Any, **__: Any) -> None:
        raise AssertionError("pickle.load called")

    monkeypatch.setattr(torch, "load", load)
    monkeypatch.setattr(pickle, "load", refuse)
    monkeypatch.setattr(pickle, "loads", refuse)
    return seen


def _pairs(n: int = 16) -> Pairs:
    return Pairs([f"the cat {i}" for i in range(n)], ["good the dog"] * n, ["bad the sun"] * n)


def test_embedding_models_load_without_torch_load(spy: list[Any], tmp_path: Path) -> None:
    config = ModelConfig.from_dict({"members": 2, "epochs": 1, "proj_dim": 4})
    model = build_reward_model(config, progress=False)
    model.fit(_pairs())
    loaded = load_reward_model(model.save(tmp_path / "m"), progress=False)
    assert torch.equal(loaded.score(_pairs(4)), model.score(_pairs(4)))
    assert spy == []


def _hostile_weights(folder: Path, marker: Path) -> None:
    """Replace the folder's safetensors weights with a pickle carrying :class:`Payload`."""
    for file in folder.glob("*.safetensors"):
        file.unlink()
    torch.save({"transformer.wte.weight": Payload(marker)}, folder / "pytorch_model.bin")


def test_a_hostile_backbone_is_refused_in_one_line_without_running_its_pickle(
        spy: list[Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from tiny_models import build_tiny_gpt2

    backbone = build_tiny_gpt2(tmp_path / "gpt2")
    marker = tmp_path / "pwned"
    _hostile_weights(backbone, marker)
    data = tmp_path / "pairs.jsonl"
    p = _pairs()
    data.write_text("".join(json.dumps({"prompt": a, "chosen": b, "rejected": c}) + "\n"
                            for a, b, c in zip(p.prompt, p.chosen, p.rejected, strict=True)))
    capsys.readouterr()
    code = main(["train", str(data), "-o", str(tmp_path / "out"), "--backend", "finetune",
                 "--model", str(backbone), "--epochs", "1", "--max-length", "16", "--quiet"])
    err = capsys.readouterr().err.strip()
    assert code == 1 and not marker.exists()
    assert "refused to unpickle" in err and "GLOBAL posix.mkdir" in err
    assert "Traceback" not in err and "weights_only=False" not in err
    assert len(err.splitlines()) == 1
    assert spy and all(w is True or w == "default" for w in spy)  # transformers asked safely
    # Since torch 2.6 the default of weights_only is True: "default" is as safe as True.
    assert tuple(int(x) for x in torch.__version__.split(".")[:2]) >= (2, 6)


def test_a_saved_model_with_pickled_weights_is_refused(spy: list[Any], tmp_path: Path) -> None:
    from tiny_models import build_tiny_gpt2, tiny_config

    backbone = build_tiny_gpt2(tmp_path / "gpt2")
    model = FinetuneRewardModel(tiny_config(str(backbone), members=1, epochs=1), progress=False)
    model.fit(_pairs())
    folder = model.save(tmp_path / "saved")
    hostile = tmp_path / "hostile"
    shutil.copytree(folder, hostile)
    marker = tmp_path / "pwned"
    _hostile_weights(hostile / "member_0", marker)
    info = json.loads((hostile / MODEL_INFO_FILE).read_text())
    assert any(k.startswith("member_0/") for k in info["files"])  # checksums cover members
    with pytest.raises(ValueError, match="member_0"):  # checked first: a listed file is gone
        load_reward_model(hostile, progress=False)
    del info["files"], info["checksum"]  # as from before checksums: the loader must refuse
    (hostile / MODEL_INFO_FILE).write_text(json.dumps(info))
    with pytest.raises(ValueError, match="cannot load this finetune model folder"):
        load_reward_model(hostile, progress=False)
    assert not marker.exists()
    assert all(w is True or w == "default" for w in spy)
