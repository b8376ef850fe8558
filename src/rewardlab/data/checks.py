"""Well-formed but suspicious pairs, and unique pair ids.

Suspicious pairs are kept (unless the caller drops them) and flagged with one or more kinds:

``empty_prompt``      the prompt is empty or whitespace (only when the input had a prompt);
``empty_response``    the chosen or the rejected response is empty or whitespace;
``identical``         chosen == rejected, so the pair carries no preference;
``duplicate``         the same (prompt, chosen, rejected) as an earlier pair (repeats only);
``early_divergence``  HH/conversational dialogues that differ before their last assistant turn.

"Empty" ignores HH role markers, so ``"\\n\\nHuman: \\n\\nAssistant:"`` is an empty prompt.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence

__all__ = ["SUSPICIOUS_KINDS", "content_id", "flag_suspicious", "is_blank", "unique_ids"]

SUSPICIOUS_KINDS = ("empty_prompt", "empty_response", "identical", "duplicate",
                    "early_divergence")
_ROLE_MARKER = re.compile(r"(?:^|\n\n)\s*(?:Human|Assistant|System):")


def is_blank(text: str) -> bool:
    """Whether ``text`` has nothing but whitespace and HH role markers."""
    stripped = text.strip()
    if not stripped:
        return True
    # Cheap exit for the usual case: only text that opens with a role marker can be all markers.
    if not stripped.startswith(("Human:", "Assistant:", "System:")):
        return False
    return not _ROLE_MARKER.sub("", text).strip()


def flag_suspicious(
    prompts: Sequence[str],
    chosen: Sequence[str],
    rejected: Sequence[str],
    prompt_present: Sequence[bool],
    early_divergence: Sequence[bool],
) -> list[list[str]]:
    """The suspicious kinds of every pair, in :data:`SUSPICIOUS_KINDS` order (empty if fine)."""
    seen: set[tuple[str, str, str]] = set()
    flags: list[list[str]] = []
    for p, c, r, has_prompt, early in zip(prompts, chosen, rejected, prompt_present,
                                          early_divergence, strict=True):
        kinds = []
        if has_prompt and is_blank(p):
            kinds.append("empty_prompt")
        if is_blank(c) or is_blank(r):
            kinds.append("empty_response")
        if c == r:
            kinds.append("identical")
        key = (p, c, r)
        if key in seen:
            kinds.append("duplicate")
        seen.add(key)
        if early:
            kinds.append("early_divergence")
        flags.append(kinds)
    return flags


def content_id(prompt: str, chosen: str, rejected: str) -> str:
    """A stable id from the pair's text: the first 16 hex digits of its SHA-1."""
    # surrogatepass: never fail on odd text here; bad text is reported elsewhere.
    data = f"{prompt}\0{chosen}\0{rejected}".encode("utf-8", "surrogatepass")
    return hashlib.sha1(data).hexdigest()[:16]


def unique_ids(ids: Sequence[str]) -> list[str]:
    """``ids`` with repeats renamed ``id-1``, ``id-2``, ... (first occurrence unchanged)."""
    taken = set(ids)
    seen: set[str] = set()
    out: list[str] = []
    for id_ in ids:
        if id_ in seen:
            k = 1
            while f"{id_}-{k}" in taken:
                k += 1
            id_ = f"{id_}-{k}"
            taken.add(id_)
        seen.add(id_)
        out.append(id_)
    return out
