"""Answer extraction as a config choice: boxed-only by default (rejection sampling and
evaluation), per student or per benchmark a fallback ("the answer is", the last number), and the
share of samples with no answer to extract in the report, per stream and benchmark."""

import json

from scripts.analysis.tables import unextracted_markdown

from conftest import markdown_rows, planned_jobs, snakemake

DEFAULTS = {"lr": 3e-4, "batch_size": 8, "epochs": 1.0}


def test_the_report_table_gives_the_unextracted_share_per_stream_and_benchmark():
    runs = [
        {
            "student": "s",
            "stream": stream,
            "objective": "sft",
            "seed": seed,
            **DEFAULTS,
            "unextracted": {"easy": share, "hard": 0.5},
        }
        for stream, seed, share in [("slm_rft", 0, 0.1), ("slm_rft", 1, 0.3), ("oracle_refined", 0, 1.0)]
    ] + [
        {
            "student": "s",
            "stream": "slm_rft",
            "objective": "sft",
            "seed": 0,
            "lr": 1.0,
            "batch_size": 8,
            "epochs": 1.0,
            "unextracted": {"easy": 0.9, "hard": 0.9},
        }
    ]  # another setting: not shown
    base = [{"student": "s", "unextracted": {"easy": 0.0, "hard": None}}]
    rows = markdown_rows(unextracted_markdown(runs, base, DEFAULTS))
    assert rows == [
        ["base", "–", "0.0", "–"],
        ["slm_rft", "SFT", "20.0", "50.0"],  # mean over seeds, in %
        ["oracle_refined", "SFT", "100.0", "50.0"],
    ]


def test_the_ci_run_grades_boxed_only_and_reports_the_unextracted_share(ci_run):
    scores = json.loads((ci_run / "results/evaluation/tiny/base/scores.json").read_text())
    for bench in scores["benchmarks"].values():
        assert bench["answer_extraction"] == "boxed"
        unextracted = bench["reasons"].get("no_boxed", 0) / (bench["problems"] * bench["k"])
        assert bench["unextracted_share"] == unextracted
    summary = json.loads((ci_run / "results/rejection_sampling/tiny/summary.json").read_text())
    assert summary["answer_extraction"] == "boxed" and 0 <= summary["unextracted_share"] <= 1
    mechanism = (ci_run / "results/report/mechanism.md").read_text()
    table = mechanism.split("## Answers the grader could not extract")[1]
    streams = {row[0] for row in markdown_rows(table)}
    assert {"base", "slm_rft", "oracle_refined", "style_aligned"} <= streams


def test_a_students_answer_extraction_reruns_its_rejection_sampling_and_evaluations_only(ci_run):
    out = snakemake(ci_run, "-n", edit="students: {tiny: {answer_extraction: last_number}}")
    jobs = planned_jobs(out)
    assert jobs["rejection_sampling"] == 1 and jobs["evaluate_base"] == 1 and jobs["evaluate_base_greedy"] == 1
    assert not {"student", "native_traces", "problem_pool"} & set(jobs)
    # a benchmark's own choice reruns the evaluations (each grades every benchmark), not the sampling
    out = snakemake(ci_run, "-n", edit="problems: {benchmarks: {two_step: {answer_extraction: answer_is}}}")
    jobs = planned_jobs(out)
    assert jobs["evaluate_base"] == 1 and "rejection_sampling" not in jobs and "native_traces" not in jobs
