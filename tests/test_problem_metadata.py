"""A row's own metadata survives loading (scripts/data/problems.py): MATH-500's level, subject and
unique_id, NuminaMath's source, the row's own id where the config maps one; and a MATH-500-format
file keeps its level and subject through the problems and evaluation stages to the report's
per-level table (scripts/analysis/tables.py utility_breakdown_markdown)."""

import json
import random
from types import SimpleNamespace

import numpy as np
import pytest

from scripts.analysis.collect import collect_base
from scripts.analysis.tables import utility_breakdown_markdown
from scripts.analysis.utility import breakdown
from scripts.data.problems import load_problem_set
from scripts.infrastructure.stage_log import StageError
from scripts.organism import word_problems as wp

from conftest import markdown_rows, run_stage

SUBJECTS = ["Algebra", "Counting & Probability", "Prealgebra"]


class Namespace(dict):
    __getattr__ = dict.__getitem__


def spec(path, n=0, **columns):
    cols = {"problem": "problem", "solution": "solution", "answer": "answer", "id": None}
    cols["metadata"] = ["source", "subject", "level", "unique_id"]
    return {
        "source": "file",
        "n": n,
        "seed": 0,
        "subsample": "first",
        "path": str(path),
        "name": None,
        "split": "test",
        "revision": None,
        "columns": {**cols, **columns},
    }


def math500_rows(n: int = 15) -> list[dict]:
    """MATH-500's columns (problem, solution, answer, subject, level, unique_id), holding the
    organism's word problems so the tiny student can be graded on them."""
    rng, rows = random.Random(3), []
    for i in range(n):
        level = 1 + i % 3
        g = wp.sample_graph(rng, 1 + level, 40)
        subject = SUBJECTS[i % 2 if level < 3 else 2]
        rows.append(
            {
                "problem": wp.problem_text(g),
                "solution": wp.reference_solution(g),
                "answer": str(g.answer),
                "subject": subject,
                "level": level,
                "unique_id": f"test/{subject.lower().split()[0]}/{i}.json",
            }
        )
    return rows


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_a_rows_own_metadata_and_id_are_kept(tmp_path):
    f = write_jsonl(tmp_path / "math500.jsonl", math500_rows(6))
    out = load_problem_set("math500", spec(f, id="unique_id"))
    assert [p["id"] for p in out] == [r["unique_id"] for r in math500_rows(6)]
    assert [(p["level"], p["subject"]) for p in out] == [(r["level"], r["subject"]) for r in math500_rows(6)]
    assert all(p["source"] == str(f) for p in out)  # no source column: the file
    default = load_problem_set("math500", spec(f))
    assert default[0]["id"] == "math500-000000" and default[0]["unique_id"] == "test/algebra/0.json"
    bare = load_problem_set("math500", spec(f, metadata=[]))
    assert "level" not in bare[0] and "unique_id" not in bare[0]


def test_a_numinamath_rows_source_column_is_its_source(tmp_path):
    rows = [
        {"problem": "1+1?", "solution": r"\boxed{2}", "source": "olympiads"},
        {"problem": "2+2?", "solution": r"\boxed{4}", "source": "cn_k12"},
    ]
    out = load_problem_set("pool", spec(write_jsonl(tmp_path / "numina.jsonl", rows), answer=None))
    assert [p["source"] for p in out] == ["olympiads", "cn_k12"]


def test_an_id_column_that_is_not_unique_is_refused_naming_it(tmp_path):
    rows = [{"problem": "a?", "answer": "1", "qid": 7}, {"problem": "b?", "answer": "2", "qid": 7}]
    with pytest.raises(StageError, match=r"columns\.id 'qid' is not unique.*'7'"):
        load_problem_set("set", spec(write_jsonl(tmp_path / "d.jsonl", rows), id="qid", solution=None))


def test_a_math500_file_keeps_level_and_subject_through_to_a_per_level_table_in_the_report(tmp_path, tiny_student):
    source = write_jsonl(tmp_path / "math500_test.jsonl", math500_rows())
    bench = tmp_path / "problems" / "math500.jsonl"
    run_stage(  # the benchmark_problems rule's job
        "problems",
        SimpleNamespace(
            log=[str(tmp_path / "problems.log")],
            threads=1,
            wildcards=Namespace(benchmark="math500"),
            input=Namespace(),
            output=Namespace(problems=str(bench)),
            params=Namespace(spec=spec(source, id="unique_id"), benchmarks=None, decontamination=None, replay=None),
        ),
    )
    problems = [json.loads(line) for line in open(bench)]
    assert {p["level"] for p in problems} == {1, 2, 3} and {p["subject"] for p in problems} == set(SUBJECTS)

    (tmp_path / "student.json").write_text(json.dumps(tiny_student))
    out = {"scores": str(tmp_path / "eval" / "scores.json"), "samples": str(tmp_path / "eval" / "samples.jsonl")}
    evaluation = {
        "backend": "transformers",
        "k": 2,
        "temperature": 1.0,
        "max_new_tokens": 80,
        "seed": 0,
        "batch_size": 64,
        "timeout_s": 3,
    }
    run_stage(  # the evaluate_base rule's job
        "evaluation",
        SimpleNamespace(
            log=[str(tmp_path / "eval.log")],
            threads=1,
            input=Namespace(student=str(tmp_path / "student.json"), benchmarks=[str(bench)]),
            output=Namespace(out),
            params=Namespace(spec=evaluation, benchmarks=["math500"], vllm=None, method=None, extraction=None),
        ),
    )
    scores = json.loads(open(out["scores"]).read())["benchmarks"]["math500"]
    assert set(scores["breakdown"]) == {"level", "subject"}  # unique_id splits nothing; source is one file
    samples = [json.loads(line) for line in open(out["samples"])]
    per_problem = {p["id"]: np.mean([s["correct"] for s in samples if s["id"] == p["id"]]) for p in problems}
    for level in ("1", "2", "3"):
        mine = [per_problem[p["id"]] for p in problems if str(p["level"]) == level]
        got = scores["breakdown"]["level"][level]
        assert got["problems"] == len(mine) == 5 and got["avg_at_k"] == pytest.approx(np.mean(mine))

    base = collect_base([{"student": "tiny", "eval": out["scores"]}])
    table = utility_breakdown_markdown([], base, {"lr": 3e-4, "batch_size": 16, "epochs": 3.0})
    assert "## tiny: math500 by level" in table and "## tiny: math500 by subject" in table
    by_level = table.split("## tiny: math500 by level")[1].split("##")[0]
    assert [r[:3] for r in markdown_rows(by_level)] == [
        [level, "5", f"{100 * scores['breakdown']['level'][level]['avg_at_k']:.2f}"] for level in ("1", "2", "3")
    ]


def test_the_breakdown_groups_by_each_field_that_splits_a_benchmark():
    problems = [
        {"id": f"p{i}", "problem": "x", "answer": "1", "level": lv, "subject": s, "unique_id": f"u{i}", "source": "f"}
        for i, (lv, s) in enumerate([(2, "A"), (10, "A"), (2, "B"), (10, "B"), (10, "B")])
    ]
    got = breakdown(problems, [1.0, 0.0, 0.5, 0.25, 0.75], seed=0)
    assert list(got) == ["level", "subject"]  # unique_id: one group per problem; source: one group
    assert list(got["level"]) == ["2", "10"]  # numbers in numeric order
    assert {v: g["avg_at_k"] for v, g in got["level"].items()} == {"2": 0.75, "10": pytest.approx(1 / 3)}
    assert {v: (g["problems"], g["avg_at_k"]) for v, g in got["subject"].items()} == {"A": (2, 0.5), "B": (3, 0.5)}
    assert breakdown([{**p, "level": None} for p in problems], [0.0] * 5, seed=0).keys() == {"subject"}
