"""The gallery of docs/datasets.md, tested: one test per public set.

Each writer makes a handful of records in the set's field shapes as its dataset card describes
them (never downloaded), with the better response's text starting "good answer" and the worse
one's "bad answer". The command is read from the page itself, parsed by the CLI's own parser,
and the load is checked pair by pair: orientation, tie count and skip count.
"""

from __future__ import annotations

import random
import re
import shlex
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pref_files import write

from rewardlab.cli import COMMANDS, _attach_values, build_config, build_parser
from rewardlab.config import LoadConfig
from rewardlab.data import read_preferences

PAGE = Path(__file__).resolve().parents[2] / "docs" / "datasets.md"
K = 8  # labelled records per set


def documented_commands() -> dict[str, str]:
    """Set name -> the command of its row in docs/datasets.md."""
    rows = re.findall(r"^\| ([^|]+?) \| `(rewardlab inspect DATA[^`]*)` \|", PAGE.read_text(),
                      re.M)
    return dict(rows)


def load_as_documented(name: str, path: Path) -> tuple[Any, Any]:
    """Load ``path`` with the flags of ``name``'s row, parsed as the CLI parses them."""
    argv = shlex.split(documented_commands()[name])[1:]
    argv = [str(path) if arg == "DATA" else arg for arg in argv]
    _, subs = build_parser()
    ns = subs["inspect"].parse_args(_attach_values(argv[1:], subs["inspect"]))
    load = build_config(LoadConfig, ns)
    return read_preferences([str(path)], **load.read_kwargs())


def sides(i: int) -> tuple[str, str, bool]:
    """(a text, b text, whether a is the better one) of labelled record ``i``."""
    a_better = random.Random(i).random() < 0.5
    good, bad = f"good answer {i}", f"bad answer {i}"
    return (good, bad, True) if a_better else (bad, good, False)


def quality(text: str) -> int:
    """How good a response is, as its writer marked it: "good answer" above every "bad answer";
    ranked sets mark their bad answers' order with "[q=N]" (higher is better)."""
    if text.startswith("good answer"):
        return 100
    assert text.startswith("bad answer"), text
    marked = re.search(r"\[q=(\d+)\]", text)
    return int(marked.group(1)) if marked else 0


def chat(question: str, answer: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]


# --- writers: (records, pairs, ties, skips) ------------------------------------------------------

Made = tuple[list[dict[str, Any]], int, int, int]


def hh() -> Made:
    rows = []
    for i in range(K):
        head = f"\n\nHuman: question {i}\n\nAssistant:"
        rows.append({"chosen": f"{head} good answer {i}", "rejected": f"{head} bad answer {i}"})
    return rows, K, 0, 0


def shp() -> Made:
    rows = []
    for i in range(K):
        a, b, a_better = sides(i)
        rows.append({"post_id": f"p{i // 2}", "domain": "askscience_train", "upvote_ratio": 0.9,
                     "history": f"question {i}", "c_root_id_A": f"ca{i}", "c_root_id_B": f"cb{i}",
                     "created_at_utc_A": 1000 + i, "created_at_utc_B": 900 + i,
                     "score_A": 40 if a_better else 3, "score_B": 3 if a_better else 40,
                     "human_ref_A": a, "human_ref_B": b, "labels": 1 if a_better else 0,
                     "seconds_difference": 100.0, "score_ratio": 13.3})
    return rows, K, 0, 0


def pku(which: str) -> Callable[[], Made]:
    def make() -> Made:
        rows = []
        for i in range(K):
            a, b, a_better = sides(i)
            better = 0 if a_better else 1
            rows.append({"prompt": f"question {i}", "response_0": a, "response_1": b,
                         "prompt_source": "Alpaca3-70B", "response_0_source": "m0",
                         "response_1_source": "m1", "is_response_0_safe": True,
                         "is_response_1_safe": bool(i % 2),
                         "better_response_id": better if which == "better" else 1 - better,
                         "safer_response_id": better if which == "safer" else 1 - better})
        return rows, K, 0, 0
    return make


def ultrafeedback_binarized() -> Made:
    rows = []
    for i in range(K + 2):
        question = f"question {i}"
        rows.append({"prompt": question, "prompt_id": f"{i:064x}",
                     "chosen": chat(question, f"good answer {i}"),
                     "rejected": chat(question, f"bad answer {i}"),
                     "messages": chat(question, f"good answer {i}"),
                     "score_chosen": 7.0 if i < K else 5.0,
                     "score_rejected": 3.5 if i < K else 5.0})
    return rows, K, 2, 0


def ultrafeedback_raw() -> Made:
    rows = []
    for i in range(K):
        scores = [9.0, 4.0, 4.0, 2.5]  # one good completion, three bad ones (two tied)
        order = list(range(4))
        random.Random(i).shuffle(order)
        completions = [{"model": f"m{j}", "principle": "helpfulness",
                        "custom_system_prompt": "", "critique": "ok",
                        "response": (f"good answer {i}" if j == 0 else
                                     f"bad answer {i} [q={int(scores[j] * 2)}] ({j})"),
                        "overall_score": scores[j], "fine-grained_score": scores[j] / 2,
                        "annotations": {"helpfulness": {"Rating": str(int(scores[j] // 2)),
                                                        "Rationale": "r", "Type": ["1"]}}}
                       for j in order]
        rows.append({"source": "evol_instruct", "instruction": f"question {i}",
                     "models": [c["model"] for c in completions], "completions": completions,
                     "correct_answers": ["None"], "incorrect_answers": ["None"]})
    # Pairs per prompt: 3 with the good completion, 2 among the bad ones, and 1 tie (4.0 = 4.0).
    return rows, 5 * K, K, 0


def helpsteer2() -> Made:
    rows = []
    for i in range(K + 3):
        a, b, a_better = sides(i)
        strength = 0 if i >= K else (-(1 + i % 3) if a_better else 1 + i % 3)
        rows.append({"split": "train", "prompt": f"question {i}", "response_1": a,
                     "response_2": b, "preference_strength": strength,
                     "preference_statement": "@Response 1 is better than @Response 2.",
                     "preference_elaboration": "It answers.",
                     "three_most_similar_preferences": [], "all_preferences_unprocessed": []})
    return rows, K, 3, 0


def nectar() -> Made:
    rows = []
    for i in range(4):
        answers = [{"answer": f"good answer {i}" if r == 1 else f"bad answer {i} [q={8 - r}]",
                    "model": f"m{r}", "rank": float(r)} for r in range(1, 8)]
        random.Random(i).shuffle(answers)
        rows.append({"prompt": f"\n\nHuman: question {i}\n\nAssistant:", "answers": answers,
                     "turns": 1, "num_responses": 7, "source": ["lmsys-chat-1m"],
                     "good_natured": True})
    return rows, 4 * 21, 0, 0


def webgpt() -> Made:
    rows = []
    for i in range(K + 2):
        a, b, a_better = sides(i)
        score = 0.0 if i >= K else (1.0 if a_better else -1.0)
        rows.append({"question": {"dataset": "eli5", "id": f"q{i}", "full_text": f"Why {i}?"},
                     "quotes_0": {"title": ["t"], "extract": ["e"]}, "answer_0": a,
                     "tokens_0": {"prefix": [1], "completion": [2]}, "score_0": score,
                     "quotes_1": {"title": ["t"], "extract": ["e"]}, "answer_1": b,
                     "tokens_1": {"prefix": [1], "completion": [3]}, "score_1": -score})
    return rows, K, 2, 0


def summarize() -> Made:
    rows = []
    for i in range(K):
        a, b, a_better = sides(i)
        rows.append({"info": {"id": f"t3_{i}", "post": f"post {i}", "title": f"title {i}",
                              "subreddit": "relationships", "site": None, "article": None},
                     "summaries": [{"text": a, "policy": "sup4", "note": None},
                                   {"text": b, "policy": "ref", "note": None}],
                     "choice": 0 if a_better else 1, "worker": "w1", "batch": "batch3",
                     "split": "train", "extra": {"confidence": 8}})
    return rows, K, 0, 0


def arena() -> Made:
    rows = []
    for i in range(K + 2):
        a, b, a_better = sides(i)
        winner = ("tie" if i == K else "tie (bothbad)") if i >= K else (
            "model_a" if a_better else "model_b")
        rows.append({"question_id": f"q{i}", "model_a": "vicuna-13b", "model_b": "koala-13b",
                     "winner": winner, "judge": f"arena_user_{i}",
                     "conversation_a": chat(f"question {i}", a),
                     "conversation_b": chat(f"question {i}", b), "turn": 1, "anony": True,
                     "language": "English", "tstamp": 1682351591.1322,
                     "openai_moderation": {"categories": {"harassment": False}, "flagged": False},
                     "toxic_chat_tag": {"roberta-large": {"flagged": False, "probability": 0.1}}})
    return rows, K, 2, 0


def skywork() -> Made:
    return [{"chosen": chat(f"question {i}", f"good answer {i}"),
             "rejected": chat(f"question {i}", f"bad answer {i}"),
             "source": "magpie_ultra"} for i in range(K)], K, 0, 0


def tulu() -> Made:
    return [{"id": f"tulu-{i}", "prompt": f"question {i}",
             "chosen": chat(f"question {i}", f"good answer {i}"),
             "rejected": chat(f"question {i}", f"bad answer {i}"),
             "source": "tulu-3-sft-reused-off-policy"} for i in range(K)], K, 0, 0


def argilla() -> Made:
    return [{"dataset": "argilla/ultrafeedback-binarized-preferences-cleaned",
             "chosen": chat(f"question {i}", f"good answer {i}"),
             "rejected": chat(f"question {i}", f"bad answer {i}"),
             "chosen_rating": 5.0, "rejected_rating": 2.0} for i in range(K)], K, 0, 0


def oasst() -> Made:
    def message(text: str, role: str, rank: int | None, replies: list[Any]) -> dict[str, Any]:
        return {"message_id": text, "parent_id": None, "text": text, "role": role,
                "lang": "en", "review_count": 3, "rank": rank, "synthetic": False,
                "deleted": False, "replies": replies}
    rows = []
    for i in range(4):
        follow = [message(f"follow-up {i}", "prompter", None, [])]
        replies = [message(f"bad answer {i} [q=2]", "assistant", 1, []),
                   message(f"good answer {i}", "assistant", 0, follow),
                   message(f"bad answer {i} [q=1]", "assistant", 2, [])]
        rows.append({"message_tree_id": f"tree{i}", "tree_state": "ready_for_export",
                     "prompt": message(f"question {i}", "prompter", None, replies)})
    # A prompt with one reply (no ranking) and one whose replies were never ranked: skipped.
    lone = [message("only answer", "assistant", None, [])]
    rows.append({"message_tree_id": "lone", "tree_state": "ready_for_export",
                 "prompt": message("lonely question", "prompter", None, lone)})
    unranked = [message("x", "assistant", None, []), message("y", "assistant", None, [])]
    rows.append({"message_tree_id": "unranked", "tree_state": "ready_for_export",
                 "prompt": message("unranked question", "prompter", None, unranked)})
    return rows, 4 * 3, 0, 2


GALLERY: dict[str, tuple[Callable[[], Made], str]] = {
    "HH-RLHF": (hh, "jsonl"),
    "SHP / SHP-2": (shp, "jsonl"),
    "PKU-SafeRLHF (helpful)": (pku("better"), "parquet"),
    "PKU-SafeRLHF (safe)": (pku("safer"), "parquet"),
    "UltraFeedback-binarized": (ultrafeedback_binarized, "parquet"),
    "UltraFeedback (raw ratings)": (ultrafeedback_raw, "jsonl"),
    "HelpSteer2-preference": (helpsteer2, "jsonl"),
    "Nectar": (nectar, "parquet"),
    "WebGPT comparisons": (webgpt, "jsonl"),
    "OpenAI summarize comparisons": (summarize, "jsonl"),
    "Chatbot Arena conversations": (arena, "parquet"),
    "Skywork-Reward-Preference": (skywork, "parquet"),
    "Tulu 3 preference mixture": (tulu, "parquet"),
    "Argilla DPO mix": (argilla, "parquet"),
    "OpenAssistant ranking trees": (oasst, "jsonl"),
}


WARNED = {"PKU-SafeRLHF (helpful)": ["safer_response_id"],
          "PKU-SafeRLHF (safe)": ["better_response_id"], "Nectar": ["source"]}
"""The columns each row's load warns about, as the page says; no other row warns."""


def test_every_row_of_the_page_is_tested() -> None:
    assert set(documented_commands()) == set(GALLERY)
    assert all(COMMANDS["inspect"] for _ in GALLERY)


@pytest.mark.parametrize("name", list(GALLERY))
def test_gallery_row(tmp_path: Path, name: str) -> None:
    make, kind = GALLERY[name]
    records, pairs, ties, skips = make()
    path = write(tmp_path / f"set.{kind}", records)
    ds, report = load_as_documented(name, path)
    assert len(ds) > 0
    for row in ds:  # every pair the right way round
        chosen, rejected = row["chosen"].strip(), row["rejected"].strip()
        assert quality(chosen) > quality(rejected), (name, row)
        assert chosen.split()[2] == rejected.split()[2], (name, row)  # the same record
    assert len(ds) == pairs, report.problem_lines()
    assert report.ties_dropped == ties, report.problem_lines()
    assert report.skipped_total == skips, report.problem_lines()
    assert report.dropped_suspicious == 0 and not report.suspicious["identical"]
    warned = [re.search(r"column '([^']+)'", w).group(1) for w in report.warnings]  # type: ignore[union-attr]
    assert warned == WARNED.get(name, []), report.warnings
