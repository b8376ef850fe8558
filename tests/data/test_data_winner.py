"""Label-column layouts (two responses and a winner column): SHP, PKU-SafeRLHF, Chatbot Arena and
an in-house a/b layout; ties; unknown labels; and the warning for an unused label column."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
from pref_files import good_sides, sides, write, write_jsonl

from rewardlab.data import DataError, load_preferences, read_preferences
from rewardlab.data.mapping import (
    looks_like_winner,
    parse_mapping,
    parse_winner_values,
    winner_key,
)

N = 24


def labels(seed: int) -> list[str]:
    return good_sides(seed, N)


def assert_good_chosen(ds: Any) -> None:
    """Every row's chosen text is the good one, by content."""
    assert len(ds) == N
    for i, row in enumerate(ds):
        assert row["chosen"].strip() == f"good answer {i}", row
        assert row["rejected"].strip() == f"bad answer {i}", row


def shp(good: list[str]) -> list[dict[str, Any]]:
    # SHP: labels is 1 when A is preferred -- the opposite of "index of the better response".
    return [{"post_id": f"p{i}", "history": f"question {i}", "human_ref_A": sides(g, i)[0],
             "human_ref_B": sides(g, i)[1], "labels": 1 if g == "a" else 0}
            for i, g in enumerate(good)]


def pku(good: list[str]) -> list[dict[str, Any]]:
    return [{"prompt": f"question {i}", "response_0": sides(g, i)[0],
             "response_1": sides(g, i)[1], "better_response_id": 0 if g == "a" else 1}
            for i, g in enumerate(good)]


def conversation(question: str, answer: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]


def arena(good: list[str]) -> list[dict[str, Any]]:
    return [{"question_id": f"q{i}", "model_a": "m1", "model_b": "m2",
             "winner": "model_a" if g == "a" else "model_b",
             "conversation_a": conversation(f"question {i}", sides(g, i)[0]),
             "conversation_b": conversation(f"question {i}", sides(g, i)[1])}
            for i, g in enumerate(good)]


def in_house(good: list[str]) -> list[dict[str, Any]]:
    return [{"instruction": f"question {i}", "output_a": sides(g, i)[0],
             "output_b": sides(g, i)[1], "preferred": g if i % 2 else g.upper()}
            for i, g in enumerate(good)]


SHP_MAP = "prompt=history,a=human_ref_A,b=human_ref_B,winner=labels,id=post_id"
PKU_MAP = "a=response_0,b=response_1,winner=better_response_id"
ARENA_MAP = "a=conversation_a,b=conversation_b,winner=winner,id=question_id"
IN_HOUSE_MAP = "prompt=instruction,a=output_a,b=output_b,winner=preferred"


@pytest.mark.parametrize("kind", ["jsonl", "csv", "parquet"])
def test_shp_with_its_value_table(tmp_path: Path, kind: str) -> None:
    path = write(tmp_path / f"shp.{kind}", shp(labels(1)))
    ds, report = read_preferences(path, mapping=SHP_MAP, winner_values="1=a,0=b")
    assert_good_chosen(ds)
    assert ds["prompt"] == [f"question {i}" for i in range(N)]
    assert ds["id"] == [f"p{i}" for i in range(N)]
    assert report.by_format == {"winner": N}
    assert report.warnings == []
    # The label column is kept, as it was (CSV has no types).
    expected = [r["labels"] for r in shp(labels(1))]
    assert ds["labels"] == ([str(v) for v in expected] if kind == "csv" else expected)


@pytest.mark.parametrize("kind", ["jsonl", "csv"])
def test_shp_without_its_table_is_refused(tmp_path: Path, kind: str) -> None:
    # The default table reads 0/1 as the index of the better response, so SHP's labels (1 when A
    # wins) read through it would load every pair backwards: a numeric winner column that is not
    # a documented index column is refused until --winner-values says what its numbers mean.
    path = write(tmp_path / f"shp.{kind}", shp(labels(1)))
    with pytest.raises(DataError) as info:
        read_preferences(path, mapping=SHP_MAP, on_bad="skip")
    message = str(info.value)
    assert message.startswith(f"{path}: field 'labels': the --map winner column holds numbers "
                              "(values seen: 0, 1)")
    assert "score_a=labels,score_b=COLUMN" in message and "--winner-values" in message


@pytest.mark.parametrize("kind", ["jsonl", "parquet.gz"])
def test_pku_better_response_id(tmp_path: Path, kind: str) -> None:
    ds, report = read_preferences(write(tmp_path / f"pku.{kind}", pku(labels(2))),
                                  mapping=PKU_MAP)
    assert_good_chosen(ds)
    # No prompt mapped: the input's own "prompt" column is used, as in the mapped layout.
    assert ds["prompt"] == [f"question {i}" for i in range(N)]
    assert report.by_format == {"winner": N}
    assert "response_0" not in ds.column_names
    assert ds["better_response_id"] == [r["better_response_id"] for r in pku(labels(2))]


@pytest.mark.parametrize("kind", ["jsonl", "parquet"])
def test_chatbot_arena_conversations(tmp_path: Path, kind: str) -> None:
    ds, report = read_preferences(write(tmp_path / f"arena.{kind}", arena(labels(3))),
                                  mapping=ARENA_MAP)
    assert_good_chosen(ds)
    # Rendered like the conversational layout: the shared user turn is the prompt.
    assert ds[0]["prompt"] == "\n\nHuman: question 0\n\nAssistant:"
    assert ds[0]["chosen"] == " good answer 0"
    assert ds["suspicious"] == [[]] * N
    assert report.by_format == {"winner": N}
    assert ds["id"] == [f"q{i}" for i in range(N)]
    assert {"winner", "model_a", "model_b"} <= set(ds.column_names)


@pytest.mark.parametrize("kind", ["csv", "jsonl"])
def test_in_house_a_b_any_case(tmp_path: Path, kind: str) -> None:
    ds, report = read_preferences(write(tmp_path / f"ours.{kind}", in_house(labels(4))),
                                  mapping=IN_HOUSE_MAP)
    assert_good_chosen(ds)
    assert report.warnings == []
    assert ds["preferred"] == [r["preferred"] for r in in_house(labels(4))]


def arena_with_ties() -> list[dict[str, Any]]:
    records = arena(labels(5))[:4]
    records[1]["winner"] = "tie"
    records[3]["winner"] = "Tie (bothbad) "  # case and spaces do not matter
    return records


def test_ties_are_dropped_and_counted(tmp_path: Path) -> None:
    ds, report = read_preferences(write_jsonl(tmp_path / "arena.jsonl", arena_with_ties()),
                                  mapping=ARENA_MAP)
    assert ds["id"] == ["q0", "q2"]
    assert report.ties_dropped == 2
    assert report.pairs == 2
    assert "target" not in ds.column_names
    assert any("dropped 2 tie(s)" in line for line in report.problem_lines())


def test_ties_kept_as_half(tmp_path: Path) -> None:
    records = arena_with_ties()
    ds, report = read_preferences(write_jsonl(tmp_path / "arena.jsonl", records),
                                  mapping=ARENA_MAP, ties="half")
    assert ds["target"] == [1.0, 0.5, 1.0, 0.5]
    assert report.ties_kept == 2
    assert report.ties_dropped == 0
    # A tie is written with a as chosen and b as rejected.
    for row, record in zip(ds, records, strict=True):
        if row["target"] == 0.5:
            assert row["chosen"] == " " + record["conversation_a"][1]["content"]
            assert row["rejected"] == " " + record["conversation_b"][1]["content"]
        else:
            assert row["chosen"].startswith(" good")


def test_ties_half_renames_an_input_target_column(tmp_path: Path) -> None:
    records = [{**r, "target": "x"} for r in in_house(labels(6))]
    ds, _ = read_preferences(write_jsonl(tmp_path / "a.jsonl", records), mapping=IN_HOUSE_MAP,
                             ties="half")
    assert ds["target"] == [1.0] * N
    assert ds["input_target"] == ["x"] * N
    # Without kept ties there is no target column to clash with: the input's stays as it is.
    ds, _ = read_preferences(tmp_path / "a.jsonl", mapping=IN_HOUSE_MAP)
    assert ds["target"] == ["x"] * N


def test_ties_via_user_table(tmp_path: Path) -> None:
    records = in_house(labels(7))[:3]
    records[2]["preferred"] = "same"
    path = write_jsonl(tmp_path / "a.jsonl", records)
    ds, report = read_preferences(path, mapping=IN_HOUSE_MAP, winner_values="a=a,b=b,same=tie")
    assert len(ds) == 2
    assert report.ties_dropped == 1


def test_only_ties_is_an_error(tmp_path: Path) -> None:
    records = [{**r, "preferred": "tie"} for r in in_house(labels(8))]
    path = write_jsonl(tmp_path / "a.jsonl", records)
    with pytest.raises(DataError, match=r"no pairs left: 24 tie\(s\) dropped"):
        read_preferences(path, mapping=IN_HOUSE_MAP)


@pytest.mark.parametrize(("kind", "where"), [("jsonl", "line 3"), ("csv", "row 3 (line 4)")])
def test_unknown_winner_names_file_line_field_value(tmp_path: Path, kind: str,
                                                    where: str) -> None:
    records = in_house(labels(9))
    records[2]["preferred"] = "c"
    path = write(tmp_path / f"a.{kind}", records)
    with pytest.raises(DataError) as info:
        read_preferences(path, mapping=IN_HOUSE_MAP)
    error = info.value
    assert str(error).startswith(f"{path}: {where}: field 'preferred': unknown winner value \"c\"")
    assert (error.file, error.where, error.field, error.reason) == (str(path), where, "preferred",
                                                                    "unknown_winner")
    ds, report = read_preferences(path, mapping=IN_HOUSE_MAP, on_bad="skip")
    assert len(ds) == N - 1
    assert report.skipped == {"unknown_winner": 1}


@pytest.mark.parametrize("value", [2, True, None, 0.5, "", [0]])
def test_odd_winner_values_are_unknown(tmp_path: Path, value: Any) -> None:
    records = pku(labels(10))[:2]
    records[1]["better_response_id"] = value
    path = write_jsonl(tmp_path / "a.jsonl", records)
    with pytest.raises(DataError) as info:
        read_preferences(path, mapping=PKU_MAP)
    assert info.value.reason == "unknown_winner"
    assert info.value.where == "line 2"


def test_user_table_replaces_the_default(tmp_path: Path) -> None:
    records = in_house(labels(11))[:2]
    records[0]["preferred"] = "x"
    records[1]["preferred"] = "a"
    path = write_jsonl(tmp_path / "a.jsonl", records)
    with pytest.raises(DataError, match=r"line 2: .*unknown winner value \"a\"; known values: "
                                        r"x, y"):
        read_preferences(path, mapping=IN_HOUSE_MAP, winner_values={"x": "a", "y": "b"})


def test_missing_winner_or_response_column(tmp_path: Path) -> None:
    records = in_house(labels(12))[:2]
    del records[1]["preferred"]
    path = write_jsonl(tmp_path / "a.jsonl", records)
    with pytest.raises(DataError, match="line 2: field 'preferred': missing \\(the mapping's "
                                        "winner column\\)"):
        read_preferences(path, mapping=IN_HOUSE_MAP)
    records = in_house(labels(12))[:2]
    del records[0]["output_b"]
    with pytest.raises(DataError, match="line 1: field 'output_b': missing"):
        read_preferences(write_jsonl(path, records), mapping=IN_HOUSE_MAP)


def test_string_and_list_responses_mixed(tmp_path: Path) -> None:
    record = {"a": "text", "b": conversation("q", "x"), "w": "a"}
    with pytest.raises(DataError) as info:
        read_preferences(write_jsonl(tmp_path / "a.jsonl", [record]), mapping="a=a,b=b,winner=w")
    assert (info.value.field, info.value.reason) == ("b", "wrong_type")


def test_hh_dialogues_as_a_and_b(tmp_path: Path) -> None:
    record = {"x": "\n\nHuman: Hi\n\nAssistant: Bye.", "y": "\n\nHuman: Hi\n\nAssistant: Hello!",
              "w": "b"}
    ds, _ = read_preferences(write_jsonl(tmp_path / "a.jsonl", [record]),
                             mapping="a=x,b=y,winner=w")
    assert (ds[0]["prompt"], ds[0]["chosen"], ds[0]["rejected"]) == (
        "\n\nHuman: Hi\n\nAssistant:", " Hello!", " Bye.")


@pytest.mark.parametrize(("mapping", "words"), [
    ("prompt=q,chosen=x,a=y,b=z,winner=w", "chosen/rejected and winner exclude each other"),
    ("a=x,b=y", "winner missing"),
    ("chosen=x,a=y", "winner missing"),
    ("a=x,b=y,winner=w,score_a=s,score_b=t", "winner and score_a/score_b exclude each other"),
    ("a=x,b=y,score_a=s", "score_b missing"),
    ("responses=r,rank=k", "text=FIELD"),
    ("responses=r,text=t", "exactly one of rank=FIELD"),
    ("responses=r,text=t,rank=k,score=s", "exactly one of rank=FIELD"),
    ("a=x,winner=w", "b missing"),
    ("winner=w", "a, b missing"),
    ("a=x,b=x,winner=w", "column 'x' feeds two fields"),
    ("a=x,b=y,winner=w,a=z", "a is mapped twice"),
    ("c=x", "unknown canonical column 'c'"),
])
def test_bad_mappings(tmp_path: Path, mapping: str, words: str) -> None:
    with pytest.raises(ValueError, match="--map") as info:
        parse_mapping(mapping)
    assert words in str(info.value)


def test_bad_options(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "a.jsonl", in_house(labels(13)))
    with pytest.raises(ValueError, match="--winner-values: given, but the mapping names no"):
        read_preferences(path, winner_values="1=a,0=b")
    with pytest.raises(ValueError, match="--winner-values: '1' maps to 'x'"):
        read_preferences(path, mapping=IN_HOUSE_MAP, winner_values="1=x")
    with pytest.raises(ValueError, match="--winner-values: expected value=side pairs"):
        read_preferences(path, mapping=IN_HOUSE_MAP, winner_values="1a")
    with pytest.raises(ValueError, match="--ties: got 'maybe'"):
        read_preferences(path, mapping=IN_HOUSE_MAP, ties="maybe")


def test_winner_value_normalization() -> None:
    for value in (1, 1.0, "1", " 1 ", "1.0"):
        assert winner_key(value) == "1"
    assert winner_key(" Model_A ") == "model_a"
    for value in (True, float("nan"), float("inf"), None, [1], {"a": 1}):
        assert winner_key(value) is None
    # Any finite number has a key, so a table can list it (HelpSteer2's -3..3, 2/3).
    assert winner_key(1.5) == winner_key("1.50") == "1.5"
    assert winner_key(2 / 3) == winner_key("0.6666666666666666") == "0.6666666666666666"
    assert winner_key("-3") == winner_key(-3.0) == "-3"
    assert parse_winner_values("1=a, 0=B ,tie (bothbad)=tie") == {
        "1": "a", "0": "b", "tie (bothbad)": "tie"}
    assert parse_winner_values({1: "a", 0: "b"}) == {"1": "a", "0": "b"}
    assert parse_winner_values(None) is None


# --- the trap: a label column read as an extra, and the warning that catches it -------------

TRAP_MAP = "prompt=instruction,chosen=output_a,rejected=output_b"


def test_unused_label_column_is_warned_about(tmp_path: Path,
                                             caplog: pytest.LogCaptureFixture) -> None:
    path = write(tmp_path / "ours.csv", in_house(labels(14)))
    ds, report = read_preferences(path, mapping=TRAP_MAP)
    assert len(ds) == N  # loaded as asked...
    assert len(report.warnings) == 1  # ...but flagged
    warning = report.warnings[0]
    assert warning.startswith(f"{path}: column 'preferred' looks like a winner label")
    assert "winner=preferred" in warning
    assert f"warning: {warning}" in report.problem_lines()
    with caplog.at_level(logging.WARNING, logger="rewardlab"):
        load_preferences(path, mapping=TRAP_MAP)
    assert "column 'preferred' looks like a winner label" in caplog.text


@pytest.mark.parametrize(("name", "values", "warn"), [
    ("preferred", ["a", "b", "A"], True),
    ("winner", ["model_a", "tie", "model_b", "tie (bothbad)"], True),
    ("labels", [1, 0, 1], True),
    ("labels", ["1", "0"], True),  # CSV
    ("better_response_id", [0, 1, None], True),
    ("choice", [0.0, 1.0, float("nan")], True),  # pandas with a missing label
    ("side", ["a", "b"], True),  # a/b words need no hint
    ("votes_against", [0, 1, 0], False),  # PandaLM: counts, not labels
    ("ties", [0, 1, 2], False),
    ("flag", [0, 1], False),
    ("label", ["yes", "no"], False),
    ("label", [True, False], False),
    ("grade", ["a", "a"], False),
    ("preferred", [None, None], False),
])
def test_looks_like_winner(name: str, values: list[Any], warn: bool) -> None:
    assert (looks_like_winner(name, values) is not None) == warn


def test_no_warning_for_the_label_in_use_or_other_layouts(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "a.jsonl", arena(labels(15)))
    assert read_preferences(path, mapping=ARENA_MAP)[1].warnings == []
    # Read without the winner layout (the responses mapped as chosen/rejected), it warns.
    records = [{"q": f"question {i}", "x": sides(g, i)[0], "y": sides(g, i)[1],
                "winner": f"model_{g}"} for i, g in enumerate(labels(15))]
    path = write_jsonl(tmp_path / "b.jsonl", records)
    report = read_preferences(path, mapping="prompt=q,chosen=x,rejected=y")[1]
    assert [w.split(": ", 1)[1][:16] for w in report.warnings] == ["column 'winner' "]
