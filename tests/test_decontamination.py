"""Decontamination of the pool against the benchmarks (scripts/data/decontamination.py): the exact
and n-gram tests on real-looking competition text, n and the threshold as the config sets them,
the removals counted per benchmark; the pool stage with the embedded default's planted copies;
and the CI-sized run's pool and report."""

import json
from types import SimpleNamespace

import yaml

from scripts.data.decontamination import decontaminate, normalise, plant
from scripts.organism.word_problems import problem_set

from conftest import REPO, markdown_rows, run_stage

MATH = {
    "math500": [
        {
            "id": "test/algebra/1.json",
            "problem": "If $x^2 + 3x - 10 = 0$, what is the sum of all possible values of $x$?",
        },
        {
            "id": "test/number_theory/2.json",
            "problem": "Find the number of positive integers $n \\le 1000$ such that $15n$ is a perfect square.",
        },
    ],
    "aime24": [
        {
            "id": "aime-7",
            "problem": (
                "Every morning Aya goes for a 9 kilometer long walk and stops at a coffee shop afterwards. "
                "When she walks at a constant speed of s kilometers per hour, the walk takes her 4 hours."
            ),
        }
    ],
}


def pool(*problems):
    return [{"id": f"pool-{i}", "problem": p} for i, p in enumerate(problems)]


def test_a_copy_with_other_spacing_case_or_punctuation_is_an_exact_match():
    assert normalise("If  $X^2+3x$ ,  WHAT?") == normalise("if x^2 + 3x what") == "if x 2 3x what"
    p = pool("IF $x^2 + 3x - 10 = 0$ , what is the sum of ALL possible values of $x$ ?", "What is 2 + 2?")
    kept, report = decontaminate(p, MATH, 8, 0.5)
    assert [r["id"] for r in kept] == ["pool-1"]
    (r,) = report["removed"]
    assert (r["pool_id"], r["benchmark"], r["benchmark_id"], r["match"]) == (
        "pool-0",
        "math500",
        "test/algebra/1.json",
        "exact",
    )


def test_a_benchmark_problem_inside_a_longer_pool_problem_is_an_ngram_match():
    aime = MATH["aime24"][0]["problem"]
    p = pool(
        "Problem 3. " + aime + " Find the number of minutes the walk takes her.",
        # the same setting with other people, numbers and question: no 8-gram in common
        "Every morning Bob goes for a 5 kilometer long run and stops at a bakery afterwards. How far does he run?",
    )
    kept, report = decontaminate(p, MATH, 8, 0.5)
    assert [r["id"] for r in kept] == ["pool-1"]
    assert report["removed"][0]["match"] == "ngram" and report["removed"][0]["overlap"] == 1.0
    assert report["per_benchmark"] == {"math500": 0, "aime24": 1}


def test_n_and_the_threshold_are_the_configs():
    bench = {"b": [{"id": "b0", "problem": "one two three four five six seven eight nine ten"}]}
    half = pool("one two three four five six seven eight other words that differ from it here")
    assert decontaminate(half, bench, 4, 0.5)[1]["removed"]  # 5 of its 7 benchmark 4-grams shared
    assert not decontaminate(half, bench, 4, 0.8)[1]["removed"]
    assert not decontaminate(half, bench, 8, 0.5)[1]["removed"]  # 1 of 3 8-grams
    short = {"b": [{"id": "b0", "problem": "Compute 2+2."}]}  # fewer than n words: exact test only
    assert decontaminate(pool("compute 2 + 2"), short, 8, 0.5)[1]["removed"]
    assert not decontaminate(pool("Please compute 2+2 now."), short, 8, 0.5)[1]["removed"]


def test_removals_are_counted_per_benchmark_and_add_up_to_the_total():
    p = pool(
        MATH["math500"][0]["problem"],
        MATH["math500"][1]["problem"].upper(),
        "Intro. " + MATH["aime24"][0]["problem"],
        "An unrelated problem about triangles and their areas, with nothing shared.",
    )
    kept, report = decontaminate(p, MATH, 8, 0.5)
    assert report["per_benchmark"] == {"math500": 2, "aime24": 1}
    assert sum(report["per_benchmark"].values()) == len(report["removed"]) == 3
    assert (report["pool_before"], report["pool_after"], len(kept)) == (4, 1, 1)
    assert report["benchmark_problems"] == {"math500": 2, "aime24": 1}


class Namespace(dict):
    __getattr__ = dict.__getitem__


def test_the_pool_stage_removes_the_planted_copies_and_writes_what_it_removed(tmp_path):
    gen = {"n": 30, "seed": 1, "min_steps": 2, "max_steps": 3, "max_value": 60, "source": "generator"}
    benchmarks = {"two": {**gen, "n": 10, "seed": 2}, "three": {**gen, "n": 10, "seed": 3}}
    files = []
    for name, spec in benchmarks.items():
        files.append(tmp_path / f"{name}.jsonl")
        files[-1].write_text("".join(json.dumps(r) + "\n" for r in problem_set(name, spec)))
    out = {"problems": str(tmp_path / "pool.jsonl"), "decontamination": str(tmp_path / "decontamination.json")}
    job = SimpleNamespace(
        log=[str(tmp_path / "pool.log")],
        threads=1,
        wildcards=Namespace(),
        input=Namespace(benchmarks=[str(f) for f in files]),
        output=Namespace(out),
        params=Namespace(
            spec=gen,
            benchmarks=list(benchmarks),
            decontamination={"enabled": True, "ngram": 8, "threshold": 0.8, "plant": 2},
            replay=None,
        ),
    )
    run_stage("problems", job)
    written = [json.loads(line) for line in open(out["problems"])]
    report = json.loads(open(out["decontamination"]).read())
    assert len(report["planted"]) == 4 and report["pool_before"] == 34
    removed = {r["pool_id"] for r in report["removed"]}
    assert set(report["planted"]) <= removed  # every planted copy found, as each variant
    assert {r["match"] for r in report["removed"] if r["pool_id"] in report["planted"]} == {"exact", "ngram"}
    assert report["per_benchmark"]["two"] >= 2 and report["per_benchmark"]["three"] >= 2
    assert [r["id"] for r in written] == [p["id"] for p in problem_set("pool", gen) if p["id"] not in removed]


def test_a_planted_copy_keeps_its_record_and_its_variant_text():
    bench = {"b": problem_set("b", {"n": 3, "seed": 5, "min_steps": 2, "max_steps": 2, "max_value": 40})}
    copies = plant(bench, 3)
    assert [c["id"] for c in copies] == ["planted-b-000", "planted-b-001", "planted-b-002"]
    assert copies[0]["problem"] == bench["b"][0]["problem"] and copies[0]["graph"] == bench["b"][0]["graph"]
    assert copies[1]["problem"] != bench["b"][1]["problem"]
    assert normalise(copies[1]["problem"]) == normalise(bench["b"][1]["problem"])
    assert bench["b"][2]["problem"] in copies[2]["problem"]


def test_the_ci_run_decontaminates_its_pool_and_lists_the_planted_copies_in_the_report(ci_run):
    config = yaml.safe_load((REPO / "config.yaml").read_text())["problems"]["decontamination"]
    report = json.loads((ci_run / "results/problems/decontamination.json").read_text())
    assert len(report["planted"]) == config["plant"] * 3  # one per benchmark
    assert {r["pool_id"] for r in report["removed"]} >= set(report["planted"])
    pool = [json.loads(line) for line in open(ci_run / "results/problems/pool.jsonl")]
    assert not [p for p in pool if p["id"].startswith("planted-")] and len(pool) == report["pool_after"]
    md = (ci_run / "results/report/decontamination.md").read_text()
    counts = {r[0]: int(r[2]) for r in markdown_rows(md) if len(r) == 3}
    assert counts == report["per_benchmark"] and sum(counts.values()) == len(report["removed"])
    listed = {r[0] for r in markdown_rows(md) if len(r) == 7}
    assert listed == {r["pool_id"] for r in report["removed"]}
