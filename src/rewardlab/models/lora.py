"""LoRA ensembles: one frozen backbone in memory, M members as adapters on it.

Member ``m`` is the adapter ``member_m``: LoRA matrices on the backbone's linear layers (every
one, or with ``--lora-targets attention`` peft's default for the model type) plus its own
copy of every module the checkpoint lacks (the reward head, ``modules_to_save``), drawn from the
member's own seed. The backbone's weights are shared and never change, so M members cost one
backbone plus M small adapters in memory and on disk.

Saved layout (inside a rewardlab model folder): ``member_m/`` in peft's own format
(``adapter_config.json``, ``adapter_model.safetensors``) and ``tokenizer/``. A member loads on its
own with plain ``peft``::

    base = AutoModelForSequenceClassification.from_pretrained(BASE, num_labels=1,
                                                               pad_token_id=PAD)
    model = PeftModel.from_pretrained(base, "model/member_0")

With an encoder the reward is then read as :mod:`rewardlab.models.pooling` says (the pooling
``rewardlab.json`` records), not from ``model(**inputs).logits``.

``rewardlab.json`` records the base checkpoint and :func:`weights_hash` of its weight files;
loading onto a base whose weights differ is refused (the adapters would silently score garbage).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

from rewardlab.models.base import ModelFolderError

__all__ = ["LoraEnsemble", "adapter_name", "check_base", "weights_hash"]

_HASH_CACHE: dict[tuple[Any, ...], str] = {}


def adapter_name(member: int) -> str:
    """Name of member ``member``'s adapter, and of its folder in a saved model."""
    return f"member_{member}"


def _weight_files(model_path: str) -> list[Path]:
    """The weight files of checkpoint ``model_path`` (a folder, or a hub id already in the local
    cache: nothing is downloaded)."""
    folder = Path(model_path)
    if not folder.is_dir():
        from huggingface_hub import snapshot_download

        try:
            folder = Path(snapshot_download(model_path, local_files_only=True))
        except Exception as exc:  # any failure means: not available offline
            raise FileNotFoundError(f"base checkpoint {model_path!r}: not a folder and not in "
                                    f"the local Hugging Face cache ({exc})") from None
    files = sorted(folder.glob("*.safetensors")) or sorted(folder.glob("*.bin"))
    if not files:
        raise FileNotFoundError(f"base checkpoint {folder}: no *.safetensors or *.bin files")
    return files


def weights_hash(model_path: str) -> str:
    """``blake2b:<hex>`` of the weight files of checkpoint ``model_path`` (names, sizes, bytes).

    It identifies the exact base weights an adapter was trained on, whatever dtype they are
    later loaded in. Hashing reads every file (about 1 GB/s); a result is remembered per file
    set, size and modification time for the life of the process.
    """
    files = _weight_files(model_path)
    key = tuple((str(f.resolve()), f.stat().st_size, f.stat().st_mtime_ns) for f in files)
    if key not in _HASH_CACHE:
        h = hashlib.blake2b(digest_size=16)
        for f in files:
            h.update(f"{f.name}\0{f.stat().st_size}\0".encode())
            with open(f, "rb") as fh:
                while chunk := fh.read(1 << 24):
                    h.update(chunk)
        _HASH_CACHE[key] = f"blake2b:{h.hexdigest()}"
    return _HASH_CACHE[key]


def _lora_config(model: torch.nn.Module, rank: int, fresh: Sequence[str], targets: str) -> Any:
    """peft's settings for one member: ``targets`` ``attention`` (peft's default for the model
    type, every linear layer for types it has none for) or ``all-linear``."""
    from peft import LoraConfig, TaskType
    from peft.utils import TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING as TARGETS

    model_type = getattr(model.config, "model_type", None)
    default = targets == "attention" and model_type in TARGETS
    # Task SEQ_CLS keeps the head (classifier / score) fully trainable per adapter; other
    # modules the checkpoint lacks join it, so a reload never meets a randomly drawn module.
    # "all-linear" leaves the head out of the LoRA targets: it is trained whole.
    return LoraConfig(task_type=TaskType.SEQ_CLS, r=rank, lora_alpha=2 * rank, lora_dropout=0.0,
                      target_modules=None if default else "all-linear",
                      modules_to_save=list(fresh) or None)


def _reinit(module: torch.nn.Module, std: float) -> None:
    """Draw a fresh copy of a new module from the current torch RNG, as ``transformers``
    initializes a missing head (normal weights, zero bias)."""
    for sub in module.modules():
        if isinstance(sub, torch.nn.Linear):
            torch.nn.init.normal_(sub.weight, mean=0.0, std=std)
            if sub.bias is not None:
                torch.nn.init.zeros_(sub.bias)
        elif hasattr(sub, "reset_parameters") and not list(sub.children()):
            sub.reset_parameters()


class LoraEnsemble:
    """M LoRA members on one shared, frozen backbone (a peft model with adapters
    ``member_0`` ... ``member_{M-1}``)."""

    def __init__(self, model: Any, members: int) -> None:
        self.model = model
        self.members = members

    @property
    def names(self) -> list[str]:
        return [adapter_name(m) for m in range(self.members)]

    # -- building -----------------------------------------------------------------------------
    @classmethod
    def grow(cls, ensemble: LoraEnsemble | None, base: torch.nn.Module | None, *, rank: int,
             fresh: Sequence[str], targets: str = "attention") -> LoraEnsemble:
        """Add the next member to ``ensemble`` (or start one on ``base``), drawn from the current
        torch RNG: seed it first. Only the new member is trainable, in float32 (the backbone may
        be bfloat16); it is the active adapter."""
        from peft import get_peft_model

        if ensemble is None:
            assert base is not None
            name = adapter_name(0)
            model = get_peft_model(base, _lora_config(base, rank, fresh, targets),
                                   adapter_name=name)
            ensemble = cls(model, 1)
        else:
            name = adapter_name(ensemble.members)
            ensemble.model.add_adapter(name, _lora_config(ensemble.model, rank, fresh, targets))
            ensemble.members += 1
        ensemble._fresh_head(name)
        ensemble.model.set_adapter(name)  # also makes exactly this member trainable
        for p in ensemble.model.parameters():
            # ZeRO-3 partitions parameters (ds_id) and keeps float32 masters itself.
            if p.requires_grad and p.dtype != torch.float32 and not hasattr(p, "ds_id"):
                p.data = p.data.float()
        return ensemble

    def _fresh_head(self, name: str) -> None:
        """Redraw adapter ``name``'s copies of the new modules: peft copies them from the
        backbone's one draw, and members must not share a head initialization."""
        from peft.utils import ModulesToSaveWrapper
        from peft.utils.integrations import gather_params_ctx

        std = float(getattr(self.model.get_base_model().config, "initializer_range", 0.02))
        for module in self.model.modules():
            if isinstance(module, ModulesToSaveWrapper) and name in module.modules_to_save:
                fresh = module.modules_to_save[name]
                # Under ZeRO-3 the copy is partitioned: gather it whole to redraw it.
                with gather_params_ctx(list(fresh.parameters()), modifier_rank=0):
                    _reinit(fresh, std)

    @contextmanager
    def gathered(self) -> Iterator[None]:
        """Every member's adapter and head weights whole on every rank inside the block (under
        DeepSpeed ZeRO-3 they are partitioned; elsewhere this does nothing). Every rank must
        enter it."""
        from peft.utils.integrations import gather_params_ctx

        names = tuple(f".{n}." for n in self.names)
        params = [p for n, p in self.model.named_parameters() if any(k in n for k in names)]
        with gather_params_ctx(params, modifier_rank=None):
            yield

    def a_stacks(self) -> list[torch.Tensor]:
        """Per adapted layer, the LoRA A matrices of the members so far, ``[K, r, d]`` (members
        first): the newest member's live, the earlier ones detached, so a term on them trains
        only the newest member against fixed references (``--diversity nuclear``)."""
        from peft.tuners.lora import LoraLayer

        stacks = []
        for module in self.model.modules():
            if isinstance(module, LoraLayer):
                mats = [module.lora_A[n].weight for n in self.names if n in module.lora_A]
                if mats:
                    stacks.append(torch.stack([a.detach() for a in mats[:-1]] + [mats[-1]]))
        return stacks

    # -- running ------------------------------------------------------------------------------
    def each(self, run: Callable[[torch.nn.Module], torch.Tensor]) -> torch.Tensor:
        """``run(model)`` -> ``[N]`` with each member active in turn, stacked to ``[M, N]``."""
        rows = []
        for name in self.names:
            self.model.set_adapter(name)
            rows.append(run(self.model))
        return torch.stack(rows)

    @contextmanager
    def routed(self, adapter_names: Sequence[str]) -> Iterator[None]:
        """Within this context, row ``i`` of a forward pass through the backbone goes through
        adapter ``adapter_names[i]`` (peft's mixed-adapter batches; eval mode only). One pass
        over the shared weights serves every member."""
        with self.model._enable_peft_forward_hooks(adapter_names=list(adapter_names)):
            yield

    # -- persistence --------------------------------------------------------------------------
    def save(self, folder: Path) -> None:
        """Write ``member_m/`` (peft format) for every member into ``folder``."""
        # peft writes a non-default adapter into a subfolder named after it: member_m/.
        self.model.save_pretrained(folder, selected_adapters=self.names)

    @classmethod
    def load(cls, folder: Path, base: torch.nn.Module, members: int) -> LoraEnsemble:
        """Attach the ``members`` adapters saved in ``folder`` to ``base`` (frozen, eval)."""
        from peft import PeftModel

        model = PeftModel.from_pretrained(base, folder / adapter_name(0),
                                          adapter_name=adapter_name(0))
        for m in range(1, members):
            model.load_adapter(folder / adapter_name(m), adapter_name=adapter_name(m))
        return cls(model.eval(), members)


def check_base(info: dict[str, Any], model_path: str, folder: os.PathLike[str]) -> None:
    """Refuse to attach the adapters of ``folder`` (recorded in ``info``) to a base checkpoint
    whose weights differ from those they were trained on."""
    expected = info.get("base_weights_hash")
    found = weights_hash(model_path)
    if expected != found:
        raise ModelFolderError(
            f"{folder}: its LoRA adapters were trained on base {info.get('base_model')!r} with "
            f"weights hash {expected}, but the base at {model_path} hashes to {found}: not the "
            f"same weights. Put the original base checkpoint back at that path (or hub id).")
