"""Small preference files with a learnable signal and known noise, for stage tests."""

import json
import random
from pathlib import Path

GOOD = ["Sure! Here is a clear, detailed and helpful answer.",
        "Happy to help: here are the steps, explained carefully.",
        "Great question. The short answer is yes, and here is why.",
        "Of course. Let me walk you through it with an example."]
BAD = ["I don't know.", "Go away, that is a stupid question.", "No.", "Whatever."]


def write_toy(path: Path, n: int, *, flip_every: int = 0, seed: int = 0) -> Path:
    """``n`` explicit pairs; every ``flip_every``-th pair has its label flipped (noted in
    ``truly_flipped``)."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        good, bad = f"{rng.choice(GOOD)} [{i}]", f"{rng.choice(BAD)} [{i}]"
        flipped = bool(flip_every) and i % flip_every == 0
        rows.append({"prompt": f"Question {i}: please help with topic {i % 11}.",
                     "chosen": bad if flipped else good, "rejected": good if flipped else bad,
                     "source": "alpha" if i % 2 else "beta", "truly_flipped": flipped})
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path
