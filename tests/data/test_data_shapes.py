"""Shapes of public sets that loaded backwards or not at all: numeric winner columns, score
columns left behind, two scores, nested fields, string prompts beside message lists, rankings
of K responses, and an input ``source`` column that is not a string."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest
from pref_files import good_sides, sides, write, write_jsonl

from rewardlab.data import DataError, read_preferences, split_train_valid_test
from rewardlab.data.ranked import rank_pairs, score_side
from rewardlab.stages.inspect import format_inspect

N = 20


def goods(seed: int) -> list[str]:
    return good_sides(seed, N)


def assert_oriented(ds: Any, rows: list[int] | None = None) -> None:
    """Every loaded pair has its good response as chosen (by content)."""
    for row in ds:
        assert row["chosen"].strip().startswith("good answer"), row
        assert row["rejected"].strip().startswith("bad answer"), row
        assert row["chosen"].split()[-1] == row["rejected"].split()[-1]


# --- 1. a score column read as a winner label ---------------------------------------------------

def webgpt(good: list[str], tie_every: int = 0) -> list[dict[str, Any]]:
    """WebGPT comparisons: question is an object, score_0 = -score_1 in [-1, 1] (0: a tie)."""
    rows = []
    for i, g in enumerate(good):
        a, b = sides(g, i)
        score = 0.0 if tie_every and i % tie_every == 0 else (1.0 if g == "a" else -1.0)
        rows.append({"question": {"dataset": "eli5", "id": f"q{i}", "full_text": f"Why {i}?"},
                     "quotes_0": {"title": [], "extract": []}, "answer_0": a,
                     "tokens_0": [1, 2], "score_0": score,
                     "quotes_1": {"title": [], "extract": []}, "answer_1": b,
                     "tokens_1": [3, 4], "score_1": -score})
    return rows


@pytest.mark.parametrize("on_bad", ["error", "skip"])
def test_score_column_as_winner_is_refused(tmp_path: Path, on_bad: str) -> None:
    # Through the default table, 1.0 read "b wins" and 0.0 "a wins": every pair backwards.
    path = write_jsonl(tmp_path / "webgpt.jsonl", webgpt(goods(1), tie_every=4))
    with pytest.raises(DataError) as info:
        read_preferences(path, mapping="a=answer_0,b=answer_1,winner=score_0", on_bad=on_bad)
    message = str(info.value)
    assert info.value.field == "score_0"
    assert "values seen: -1, 0, 1" in message
    assert "score_a=score_0,score_b=COLUMN" in message and "--winner-values" in message


def test_documented_index_columns_still_read_without_a_table(tmp_path: Path) -> None:
    rows = [{"prompt": f"q{i}", "response_0": sides(g, i)[0], "response_1": sides(g, i)[1],
             "better_response_id": 0 if g == "a" else 1,
             "safer_response_id": 1 if g == "a" else 0} for i, g in enumerate(goods(2))]
    path = write(tmp_path / "pku.csv", rows)
    ds, _ = read_preferences(path, mapping="a=response_0,b=response_1,winner=better_response_id")
    assert len(ds) == N
    assert_oriented(ds)
    ds, _ = read_preferences(path, mapping="a=response_0,b=response_1,winner=safer_response_id")
    assert all(row["chosen"].startswith("bad") for row in ds)  # the safer one is the bad one


def test_a_listed_value_is_never_unknown(tmp_path: Path) -> None:
    # Non-whole numbers a table names are read, including the repr of 2/3.
    rows = [{"x": f"good answer {i}", "y": f"bad answer {i}", "w": [2 / 3, 0.5, 1 / 3][i % 3]}
            for i in range(6)]
    path = write_jsonl(tmp_path / "a.jsonl", rows)
    ds, report = read_preferences(path, mapping="a=x,b=y,winner=w",
                                  winner_values="0.6666666666666666=a,0.5=tie,0.3333333333333333=b")
    assert report.ties_dropped == 2 and report.skipped == {}
    assert [row["chosen"] for row in ds] == ["good answer 0", "bad answer 2", "good answer 3",
                                             "bad answer 5"]


def helpsteer2(good: list[str], tie_every: int = 5) -> list[dict[str, Any]]:
    """HelpSteer2 preference: -3..-1 response_1 better, 0 same, 1..3 response_2 better."""
    rows = []
    for i, g in enumerate(good):
        strength = 0 if i % tie_every == 0 else (-(1 + i % 3) if g == "a" else 1 + i % 3)
        rows.append({"split": "train", "prompt": f"question {i}", "response_1": sides(g, i)[0],
                     "response_2": sides(g, i)[1], "preference_strength": strength,
                     "preference_statement": "@Response 1 is better.",
                     "preference_elaboration": "Because."})
    return rows


HS2_VALUES = "-3=a,-2=a,-1=a,0=tie,1=b,2=b,3=b"


def test_helpsteer2_preference_strength_with_its_table(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "hs2.jsonl", helpsteer2(goods(3)))
    mapping = "a=response_1,b=response_2,winner=preference_strength"
    with pytest.raises(DataError, match="values seen: -3, -2, -1, 0, 1, 2, 3"):
        read_preferences(path, mapping=mapping)
    ds, report = read_preferences(path, mapping=mapping, winner_values=HS2_VALUES)
    assert len(ds) == N - 4 and report.ties_dropped == 4 and report.skipped == {}
    assert_oriented(ds)
    assert report.warnings == []


# --- 2. a score column left behind ------------------------------------------------------------

def test_score_column_left_behind_is_warned_about(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "hs2.jsonl", helpsteer2(goods(4)))
    ds, report = read_preferences(path, mapping="prompt=prompt,chosen=response_1,"
                                                "rejected=response_2")
    assert len(ds) == N  # loaded as asked, some backwards...
    assert len(report.warnings) == 1  # ...but flagged
    warning = report.warnings[0]
    assert warning.startswith(f"{path}: column 'preference_strength' holds numbers")
    assert "winner=preference_strength" in warning and "score_a=COLUMN" in warning


@pytest.mark.parametrize(("name", "warn"), [("score", True), ("rating", True),
                                            ("overall_preference", True), ("choice", True),
                                            ("label", True), ("votes", False),
                                            ("length", False)])
def test_which_numeric_leftovers_warn(tmp_path: Path, name: str, warn: bool) -> None:
    rows = [{"prompt": f"q{i}", "chosen": "x", "rejected": "y", name: [3, 7, 2.5][i % 3]}
            for i in range(6)]
    report = read_preferences(write(tmp_path / "a.csv", rows))[1]
    assert bool(report.warnings) == warn


@pytest.mark.parametrize(("chosen", "rejected"), [("chosen_rating", "rejected_rating"),
                                                  ("score_chosen", "score_rejected")])
def test_side_scores_that_disagree_with_the_order(tmp_path: Path, chosen: str,
                                                  rejected: str) -> None:
    # Argilla's chosen_rating/rejected_rating, UltraFeedback's score_chosen/score_rejected: in
    # order, no warning; one pair reversed, a warning that counts it.
    rows = [{"prompt": f"q{i}", "chosen": f"c{i}", "rejected": f"r{i}", chosen: 5.0,
             rejected: 2.0} for i in range(5)]
    assert read_preferences(write_jsonl(tmp_path / "a.jsonl", rows))[1].warnings == []
    rows[3][rejected] = 9.0
    warnings = read_preferences(write_jsonl(tmp_path / "a.jsonl", rows))[1].warnings
    assert len(warnings) == 1
    assert f"{chosen!r} is below {rejected!r} in 1 of 5 pairs" in warnings[0]


def test_inspect_text_shows_warnings_and_ties(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "hs2.jsonl", helpsteer2(goods(5)))
    _, report = read_preferences(path, mapping="chosen=response_1,rejected=response_2")
    text = format_inspect({**report.to_dict(), "suspicious": {}, "tokens": {}})
    assert "warning: " + report.warnings[0] in text
    _, report = read_preferences(path, mapping="a=response_1,b=response_2,"
                                 "winner=preference_strength", winner_values=HS2_VALUES)
    text = format_inspect({**report.to_dict(), "suspicious": {}, "tokens": {}})
    assert "ties: 4 dropped, 0 kept with target 0.5" in text


# --- 4. two scores instead of a winner ------------------------------------------------------------

WEBGPT_MAP = "prompt=question.full_text,a=answer_0,b=answer_1,score_a=score_0,score_b=score_1"


def test_two_scores_pick_the_higher(tmp_path: Path) -> None:
    good = goods(6)
    path = write_jsonl(tmp_path / "webgpt.jsonl", webgpt(good, tie_every=4))
    ds, report = read_preferences(path, mapping=WEBGPT_MAP)
    assert len(ds) == N - 5 and report.ties_dropped == 5
    assert_oriented(ds)
    assert report.by_format == {"scores": N - 5}
    assert ds["chosen_score"] == [1.0] * (N - 5) and ds["rejected_score"] == [-1.0] * (N - 5)
    assert ds[0]["prompt"] == "Why 1?"
    assert "score_0" not in ds.column_names and "question" in ds.column_names
    ds, report = read_preferences(path, mapping=WEBGPT_MAP, ties="half")
    assert report.ties_kept == 5 and ds["target"].count(0.5) == 5


def test_min_score_gap_makes_close_scores_ties(tmp_path: Path) -> None:
    rows = [{"x": f"good answer {i}", "y": f"bad answer {i}", "sx": 5.0, "sy": 5.0 - gap}
            for i, gap in enumerate([0.0, 0.5, 1.0, 2.0])]
    path = write(tmp_path / "a.csv", rows)  # CSV: the scores are text
    mapping = "a=x,b=y,score_a=sx,score_b=sy"
    assert read_preferences(path, mapping=mapping)[1].ties_dropped == 1
    ds, report = read_preferences(path, mapping=mapping, min_score_gap=1.0)
    assert report.ties_dropped == 3 and ds["chosen"] == ["good answer 3"]
    with pytest.raises(ValueError, match="--min-score-gap"):
        read_preferences(path, mapping=mapping, min_score_gap=-1)


def test_a_score_that_is_not_a_number_is_a_bad_record(tmp_path: Path) -> None:
    rows = [{"x": "good answer 0", "y": "bad answer 0", "sx": 2, "sy": 1},
            {"x": "good answer 1", "y": "bad answer 1", "sx": "high", "sy": 1}]
    path = write_jsonl(tmp_path / "a.jsonl", rows)
    with pytest.raises(DataError, match="line 2: field 'sx': expected a number"):
        read_preferences(path, mapping="a=x,b=y,score_a=sx,score_b=sy")


def test_score_scale_side_rules() -> None:
    assert score_side(2.0, 1.0) == "a" and score_side(1.0, 2.0) == "b"
    assert score_side(1.0, 1.0) == "tie" and score_side(1.0, 1.4, 0.5) == "tie"


# --- 5. nested fields ---------------------------------------------------------------------------

def summarize(good: list[str]) -> list[dict[str, Any]]:
    """OpenAI summarize-from-feedback comparisons: choice is the index of the better summary."""
    return [{"info": {"id": f"t3_{i}", "post": f"post {i}", "title": "t", "subreddit": "r",
                      "site": None, "article": None},
             "summaries": [{"text": sides(g, i)[0], "policy": "p1", "note": None},
                           {"text": sides(g, i)[1], "policy": "p2", "note": None}],
             "choice": 0 if g == "a" else 1, "worker": "w", "batch": "b1", "split": "train",
             "extra": {"confidence": 7}} for i, g in enumerate(good)]


SUMMARIZE_MAP = "prompt=info.post,a=summaries.0.text,b=summaries.1.text,winner=choice,id=info.id"


@pytest.mark.parametrize("kind", ["jsonl", "parquet"])
def test_nested_fields(tmp_path: Path, kind: str) -> None:
    path = write(tmp_path / f"cmp.{kind}", summarize(goods(7)))
    ds, report = read_preferences(path, mapping=SUMMARIZE_MAP, winner_values="0=a,1=b")
    assert len(ds) == N and report.skipped == {}
    assert_oriented(ds)
    assert ds["prompt"] == [f"post {i}" for i in range(N)]
    assert ds["id"] == [f"t3_{i}" for i in range(N)]
    with pytest.raises(DataError, match=r"field 'summaries\.2\.text': missing"):
        read_preferences(path, mapping="a=summaries.0.text,b=summaries.2.text,winner=choice",
                         winner_values="0=a,1=b")


# --- 6. a string prompt beside message-list responses ------------------------------------------

def chat(question: str, answer: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]


def ultrafeedback_binarized(good: list[str]) -> list[dict[str, Any]]:
    rows = []
    for i, g in enumerate(good):
        a, b = sides(g, i)
        better, worse = (a, b) if g == "a" else (b, a)
        rows.append({"prompt": f"question {i}", "prompt_id": f"id{i}",
                     "chosen": chat(f"question {i}", better),
                     "rejected": chat(f"question {i}", worse),
                     "messages": chat(f"question {i}", better),
                     "score_chosen": 8.0, "score_rejected": 8.0 if i % 5 == 0 else 4.0})
    return rows


def test_string_prompt_beside_message_lists(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "ufb.jsonl", ultrafeedback_binarized(goods(8)))
    ds, report = read_preferences(path)  # today: "expected a list of messages" on prompt
    assert len(ds) == N and report.by_format == {"conversational": N}
    assert_oriented(ds)
    row = ds[0]
    assert row["prompt"] == "\n\nHuman: question 0\n\nAssistant:"
    assert row["chosen"] == " good answer 0"  # the repeated user turn is stripped
    assert row["prompt_messages"] == [{"role": "user", "content": "question 0"}]
    assert row["chosen_messages"] == [{"role": "assistant", "content": "good answer 0"}]
    assert row["prompt_text"] == "question 0"
    # Responses that do not repeat the prompt get it as their user turn.
    rows = [{"prompt": "q", "chosen": [{"role": "assistant", "content": "good answer 0"}],
             "rejected": [{"role": "assistant", "content": "bad answer 0"}]}]
    ds, _ = read_preferences(write_jsonl(tmp_path / "b.jsonl", rows))
    assert (ds[0]["prompt"], ds[0]["chosen"]) == ("\n\nHuman: q\n\nAssistant:", " good answer 0")


def test_string_prompt_exports_in_its_own_shape(tmp_path: Path) -> None:
    from rewardlab.stages.export import _as_messages

    path = write_jsonl(tmp_path / "ufb.jsonl", ultrafeedback_binarized(goods(9))[:3])
    ds, _ = read_preferences(path)
    rows = ds.to_list()
    assert _as_messages(rows)
    record = json.loads(path.read_text().splitlines()[0])
    assert {k: rows[0][k] for k in ("prompt", "chosen", "rejected")} == {
        k: record[k] for k in ("prompt", "chosen", "rejected")}


def test_ufb_scores_decide_with_ties(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "ufb.jsonl", ultrafeedback_binarized(goods(10)))
    ds, report = read_preferences(path, mapping="a=chosen,b=rejected,score_a=score_chosen,"
                                                "score_b=score_rejected")
    assert len(ds) == N - 4 and report.ties_dropped == 4
    assert_oriented(ds)
    assert ds[0]["prompt"] == "\n\nHuman: question 1\n\nAssistant:"


# --- 7. rankings of K responses -------------------------------------------------------------------

def nectar(k: int = 4) -> list[dict[str, Any]]:
    """Nectar: answers listed in random order, rank 1 best; source is a list."""
    rows = []
    for i in range(5):
        answers = [{"answer": f"answer {i} ranked {r}", "model": f"m{r}", "rank": float(r)}
                   for r in range(1, k + 1)]
        random.Random(i).shuffle(answers)
        rows.append({"prompt": f"\n\nHuman: question {i}\n\nAssistant:", "answers": answers,
                     "turns": 1, "num_responses": k, "source": ["sharegpt", "lmsys"],
                     "good_natured": True})
    return rows


NECTAR_MAP = "responses=answers,text=answer,rank=rank"


def ranked(row: dict[str, Any], side: str) -> int:
    return int(row[side].rsplit(" ", 1)[1])


@pytest.mark.parametrize(("mode", "per_prompt"), [("all", 6), ("best-worst", 1),
                                                   ("adjacent", 3)])
def test_rankings_expand_into_pairs(tmp_path: Path, mode: str, per_prompt: int) -> None:
    path = write(tmp_path / "nectar.parquet", nectar())
    ds, report = read_preferences(path, mapping=NECTAR_MAP, ranking_pairs=mode)
    assert len(ds) == 5 * per_prompt and report.by_format == {"ranking": 5 * per_prompt}
    for row in ds:
        assert ranked(row, "chosen") < ranked(row, "rejected")  # rank 1 is best
        assert (row["chosen_rank"], row["rejected_rank"]) == (ranked(row, "chosen"),
                                                              ranked(row, "rejected"))
    if mode == "best-worst":
        assert {(ranked(r, "chosen"), ranked(r, "rejected")) for r in ds} == {(1, 4)}
    # 8. Nectar's list-valued source is kept under another name, and said so.
    assert ds["input_source"] == [["sharegpt", "lmsys"]] * len(ds)
    assert set(ds["source"]) == {"nectar"}
    assert any("'source'" in w and "input_source" in w for w in report.warnings)


def test_ranking_by_score_with_ties_and_one_split_per_prompt(tmp_path: Path) -> None:
    # Raw UltraFeedback: completions with an overall_score, higher is better; equal is a tie.
    rows = [{"instruction": f"question {i}", "source": "evol", "models": ["a", "b", "c"],
             "completions": [{"model": "a", "response": f"good answer {i}", "overall_score": 9},
                             {"model": "b", "response": f"bad answer {i}", "overall_score": 3},
                             {"model": "c", "response": f"bad answer again {i}",
                              "overall_score": 3}]}
            for i in range(30)]
    path = write_jsonl(tmp_path / "uf.jsonl", rows)
    ds, report = read_preferences(path, mapping="prompt=instruction,responses=completions,"
                                                "text=response,score=overall_score")
    assert len(ds) == 60 and report.ties_dropped == 30
    assert_oriented(ds)
    assert ds["chosen_score"] == [9.0] * 60
    train, valid, test = split_train_valid_test(ds, valid_frac=0.2, test_frac=0.2, seed=0)
    sides = {}
    for name, part in (("train", train), ("valid", valid), ("test", test)):
        for prompt in part["prompt"]:
            sides.setdefault(prompt, set()).add(name)
    assert all(len(s) == 1 for s in sides.values()) and len(valid) and len(test)


def test_rank_pairs_rules() -> None:
    assert rank_pairs([3, 1, 2], higher_is_better=False) == [(1, 2, False), (1, 0, False),
                                                              (2, 0, False)]
    assert rank_pairs([3, 1, 2], higher_is_better=False, mode="adjacent") == [(1, 2, False),
                                                                              (2, 0, False)]
    assert rank_pairs([5, 5, 1], higher_is_better=True) == [(0, 1, True), (0, 2, False),
                                                            (1, 2, False)]


def test_too_short_ranking_is_a_bad_record(tmp_path: Path) -> None:
    rows = nectar()
    rows[1]["answers"] = rows[1]["answers"][:1]
    path = write_jsonl(tmp_path / "n.jsonl", rows)
    with pytest.raises(DataError, match="line 2: field 'answers': holds 1 response"):
        read_preferences(path, mapping=NECTAR_MAP)
    report = read_preferences(path, mapping=NECTAR_MAP, on_bad="skip")[1]
    assert report.skipped == {"too_few_responses": 1}


# --- 9. no prompts at all -----------------------------------------------------------------------

def test_empty_prompts_split_by_pair(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    rows = [{"chosen": f"good answer {i}", "rejected": f"bad answer {i}"} for i in range(40)]
    ds, _ = read_preferences(write_jsonl(tmp_path / "a.jsonl", rows))
    with caplog.at_level("WARNING", logger="rewardlab"):
        train, valid, test = split_train_valid_test(ds, valid_frac=0.2, test_frac=0.2, seed=0)
    assert len(valid) and len(test) and len(train) + len(valid) + len(test) == 40
    assert "every prompt is empty: splitting by pair" in caplog.text
