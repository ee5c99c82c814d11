import json

import polars as pl
import pytest

from scripts.data.problems import load_problem_set
from scripts.infrastructure.stage_log import StageError

SCHEMA = {"id", "problem", "answer", "reference_solution", "source"}


def spec(**kw):
    base = {
        "source": "generator",
        "n": 20,
        "seed": 3,
        "subsample": "first",
        "min_steps": 2,
        "max_steps": 3,
        "max_value": 99,
        "path": None,
        "name": None,
        "split": "train",
        "revision": None,
        "columns": {"problem": "problem", "solution": "solution", "answer": None},
    }
    return {**base, **kw}


def test_generator_is_deterministic_by_seed_and_normalised():
    a, b = load_problem_set("pool", spec()), load_problem_set("pool", spec())
    assert a == b and len(a) == 20
    assert load_problem_set("pool", spec(seed=4)) != a
    assert SCHEMA <= set(a[0]) and a[0]["graph"]
    assert len({p["problem"] for p in a}) == 20
    assert all(p["answer"].isdigit() for p in a)


def test_numinamath_like_file_takes_the_answer_from_the_solution(tmp_path):
    f = tmp_path / "numina.jsonl"
    rows = [
        {"problem": "1+1?", "solution": r"It is \boxed{2}."},
        {"problem": "no answer here", "solution": "We cannot say."},
        {"problem": "half of 1?", "solution": r"\boxed{\frac{1}{2}}"},
    ]
    f.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = load_problem_set("pool", spec(source="file", path=str(f), n=0))
    assert [(p["problem"], p["answer"]) for p in out] == [("1+1?", "2"), ("half of 1?", r"\frac{1}{2}")]
    assert out[0]["reference_solution"] == r"It is \boxed{2}."


def test_math500_like_parquet_with_an_answer_column_and_random_subsample(tmp_path):
    f = tmp_path / "math500.parquet"
    pl.DataFrame(
        {"problem": [f"p{i}" for i in range(50)], "solution": ["s"] * 50, "answer": [str(i) for i in range(50)]}
    ).write_parquet(f)
    cols = {"problem": "problem", "solution": "solution", "answer": "answer"}
    a = load_problem_set("math500", spec(source="file", path=str(f), n=10, subsample="random", columns=cols))
    b = load_problem_set("math500", spec(source="file", path=str(f), n=10, subsample="random", columns=cols))
    assert a == b and len(a) == 10 and [p["problem"] for p in a] != [f"p{i}" for i in range(10)]
    assert all(p["answer"] == p["problem"][1:] for p in a)


def test_a_broken_problem_file_names_the_file(tmp_path):
    f = tmp_path / "broken.jsonl"
    f.write_text('{"problem": "ok", "solution": "\\\\boxed{1}"}\n{not json\n')
    with pytest.raises(StageError, match="broken.jsonl"):
        load_problem_set("pool", spec(source="file", path=str(f)))


def test_a_missing_column_is_named_with_the_columns_that_exist(tmp_path):
    f = tmp_path / "p.jsonl"
    f.write_text(json.dumps({"question": "1+1?", "solution": r"\boxed{2}"}) + "\n")
    with pytest.raises(StageError, match="'problem'.*question"):
        load_problem_set("pool", spec(source="file", path=str(f)))


def test_an_answer_given_as_a_list_becomes_one_string(tmp_path):
    # OlympiadBench's final_answer column holds lists such as ["$3$"]
    f = tmp_path / "olympiad.jsonl"
    rows = [{"question": "x?", "final_answer": ["$3$"]}, {"question": "y, z?", "final_answer": ["$1$", "$2$"]}]
    f.write_text("".join(json.dumps(r) + "\n" for r in rows))
    cols = {"problem": "question", "solution": None, "answer": "final_answer"}
    out = load_problem_set("olympiad", spec(source="file", path=str(f), n=0, columns=cols))
    assert [p["answer"] for p in out] == ["3", "1, 2"]
