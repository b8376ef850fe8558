"""Stage: a semi-synthetic preference set with known flipped labels, from real texts."""

from __future__ import annotations

from pathlib import Path

from rewardlab.config import (
    CommonConfig,
    InputConfig,
    LoadConfig,
    ModelConfig,
    OutputConfig,
    SyntheticConfig,
)
from rewardlab.files import write_jsonl
from rewardlab.stages.command import CommandResult

__all__ = ["synthetic_command"]


def synthetic_command(*, data: InputConfig, load: LoadConfig, model: ModelConfig,
                      synthetic: SyntheticConfig, output: OutputConfig,
                      common: CommonConfig) -> CommandResult:
    """``rewardlab synthetic``: re-label real pairs by a hidden teacher, then flip a known share.

    Suspicious pairs are always dropped: an empty or identical pair has no teacher preference.
    """
    from rewardlab.data import read_preferences
    from rewardlab.models.encode import default_cache_dir, get_encoder
    from rewardlab.synthetic import make_synthetic

    ds, _ = read_preferences(data.data, **{**load.read_kwargs(), "drop_suspicious": True})
    enc = get_encoder(model.model, max_length=model.max_length, pooling=model.embedding_pooling,
                      batch_size=model.encode_batch_size,
                      cache_dir=model.embedding.cache_dir or default_cache_dir(),
                      progress=not common.quiet)
    syn = make_synthetic(ds, encoder=enc, flip_rate=synthetic.flip_rate, noise=synthetic.noise,
                         near_tie_share=synthetic.near_tie_share, seed=model.seed)
    write_jsonl(output.out, syn.to_list())
    line = f"{len(syn)} pairs, {sum(syn['injected_flip'])} flipped ({synthetic.noise})"
    return CommandResult([line], {"pairs": Path(output.out)}, syn)
