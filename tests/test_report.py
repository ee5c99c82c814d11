"""The report: streams.csv, Table 1, the mechanism table and the figures, from small fake
stage outputs built to show the paradox (reward ranking = reverse of DFT utility ranking)."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import polars as pl
import pytest

from scripts.analysis import figures
from scripts.analysis.collect import collect_base, collect_runs, collect_streams
from scripts.analysis.statistics import exact_reverse, spearman
from scripts.analysis.tables import oracle_streams_markdown, published_comparison, published_markdown
from scripts.infrastructure.records import write_json
from scripts.infrastructure.stage_log import StageError

from conftest import markdown_rows, run_stage

STUDENT = "qwen2.5-math-1.5b"
DEFAULTS = {"lr": 5e-5, "batch_size": 256, "epochs": 3}
BENCHMARKS = ("math500", "aime24")
# stream -> (reward, ppl, utility under SFT, utility under DFT); DFT exactly reverses reward.
STREAMS = {
    "oracle_synthesized": (1.88, 2.69, 0.2326, 0.3002),
    "oracle_refined": (1.70, 1.85, 0.1960, 0.3406),
    "slm_rft": (1.47, 1.52, 0.2274, 0.3706),
}
BASE_ACC = 0.12


def _scores(path, acc: float) -> str:
    # per-benchmark values straddle the average so the headline equals ``acc``
    bench = {
        b: {
            "avg_at_k": acc + d,
            "ci95_low": acc + d - 0.02,
            "ci95_high": acc + d + 0.02,
            "k": 4,
            "problems": 10,
            "timeouts": 0,
            "unfinished": 0,
            "reasons": {},
        }
        for b, d in zip(BENCHMARKS, (0.05, -0.05))
    }
    write_json(path, {"benchmarks": bench, "k": 4, "temperature": 1.0, "avg_at_k": acc})
    return str(path)


def _stream(tmp, student: str, stream: str, reward: float, ppl: float) -> dict:
    d = tmp / student / stream
    write_json(
        d / "reward.json",
        {
            "stream": stream,
            "reward_model": "builtin",
            "mean": reward,
            "ci95_low": reward - 0.05,
            "ci95_high": reward + 0.05,
            "n": 100,
        },
    )
    write_json(
        d / "cost.json",
        {
            "stream": stream,
            "traces": 100,
            "tokens": 5000,
            "mean_nll": math.log(ppl),
            "ppl": ppl,
            "ppl_mean_per_trace": ppl,
            **{f"ppl_q{q}": ppl * (1.3 - 0.1 * q) for q in range(1, 5)},
            "result_token_accuracy": 1 / ppl,  # the learnability probe: lower where the drift is larger
        },
    )
    write_json(
        d / "summary.json",
        {
            "stream": stream,
            "kept": 100,
            "rejected": 3 if stream != "slm_rft" else 0,
            "rejected_reasons": {},
            "edited_spans": 0,
        },
    )
    return {
        "student": student,
        "stream": stream,
        "reward": {"builtin": str(d / "reward.json")},
        "adaptation_cost": str(d / "cost.json"),
        "summary": str(d / "summary.json"),
    }


def _run(tmp, student, stream, objective, lr, batch_size, seed, acc, epochs=3) -> dict:
    d = tmp / student / stream / f"{objective}_{lr}_{batch_size}_{epochs}_{seed}"
    write_json(
        d / "train.json",
        {
            "method": "full",
            "objective": objective,
            "seed": seed,
            "lr": lr,
            "batch_size": batch_size,
            "epochs": epochs,
            "n_examples": 100,
            "steps": 5,
            "final_loss": 0.5,
        },
    )
    (d / "curve.csv").write_text("step,loss,lr\n" + "".join(f"{s},{1.0 / s + 0.01 * seed},{lr}\n" for s in range(1, 6)))
    return {
        "student": student,
        "stream": stream,
        "objective": objective,
        "lr": lr,
        "batch_size": batch_size,
        "epochs": epochs,
        "seed": seed,
        "train": str(d / "train.json"),
        "curve": str(d / "curve.csv"),
        "eval": _scores(d / "eval.json", acc),
    }


def _inputs(tmp, streams=STREAMS, objectives=("sft", "dft"), student=STUDENT):
    s = [_stream(tmp, student, name, r, p) for name, (r, p, _, _) in streams.items()]
    runs = [
        _run(tmp, student, name, o, DEFAULTS["lr"], DEFAULTS["batch_size"], seed, acc + (0.01 if seed else -0.01))
        for name, (_, _, sft, dft) in streams.items()
        for o, acc in (("sft", sft), ("dft", dft))
        if o in objectives
        for seed in (0, 1)
    ]
    base = [{"student": student, "eval": _scores(tmp / student / "base.json", BASE_ACC)}]
    return s, runs, base


class Namespace(dict):
    __getattr__ = dict.__getitem__


def _build(tmp, streams, runs, base, published=None):
    """The report stage on the fake stage outputs, as Snakemake runs it."""
    out = {
        "streams_csv": tmp / "report" / "streams.csv",
        "table1": tmp / "report" / "table1.md",
        "mechanism": tmp / "report" / "mechanism.md",
        "figures": tmp / "report" / "figures",
    }
    if published:
        out["published_comparison"] = tmp / "report" / "published_comparison.md"
    run_stage(
        "report",
        SimpleNamespace(
            output=Namespace({k: str(v) for k, v in out.items()}),
            log=[str(tmp / "report.log")],
            threads=1,
            params=Namespace(
                streams=streams,
                runs=runs,
                base=base,
                primary_reward="builtin",
                table_defaults=DEFAULTS,
                published=published,
                stream_specs={
                    s["stream"]: {"kind": "slm_rft" if s["stream"] == "slm_rft" else "oracle", "oracle": "api"}
                    for s in streams
                },
                oracles={"api": {"backend": "openai"}},
                rewards={"builtin": {"backend": "sequence_classifier"}},
                alpha=0.05,
            ),
        ),
    )
    return out


def _rows(tmp, streams, runs, base):
    return collect_streams(streams, "builtin"), collect_runs(runs), collect_base(base)


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("report")
    streams, runs, base = _inputs(tmp)
    # a robustness-grid run: in streams.csv, but not in Table 1 (wrong lr)
    runs.append(_run(tmp, STUDENT, "slm_rft", "dft", 2e-5, 256, 0, 0.99))
    return _build(tmp, streams, runs, base)


def test_spearman_of_exactly_reversed_rankings_is_minus_one():
    reward, acc = [1.88, 1.70, 1.47, 1.37], [0.30, 0.34, 0.37, 0.39]
    assert spearman(reward, acc) == pytest.approx(-1.0)
    assert exact_reverse(reward, acc) is True
    assert exact_reverse(reward, [0.30, 0.37, 0.34, 0.39]) is False


def test_spearman_uses_average_ranks_and_skips_nan():
    # ties share a rank: scipy.stats.spearmanr([1, 2, 2, 3], [1, 2, 3, 4]) = 0.9486832980505138
    assert spearman([1, 2, 2, 3], [1, 2, 3, 4]) == pytest.approx(0.9486832980505138)
    assert spearman([1, 2, math.nan, 3], [3, 2, 0, 1]) == pytest.approx(-1.0)


def test_spearman_is_undefined_for_a_single_stream():
    assert math.isnan(spearman([1.5], [0.3]))
    assert exact_reverse([1.5], [0.3]) is None


def test_streams_csv_has_a_row_per_run_plus_a_base_row(report):
    df = pl.read_csv(report["streams_csv"])
    assert df.columns == [
        "student",
        "stream",
        "objective",
        "lr",
        "batch_size",
        "epochs",
        "seed",
        "n_examples",
        "reward_mean",
        "reward_ci95_low",
        "reward_ci95_high",
        "ppl",
        "ppl_q1",
        "ppl_q2",
        "ppl_q3",
        "ppl_q4",
        "final_loss",
        "avg_at_k",
        "avg_at_k_aime24",
        "avg_at_k_math500",
        "rejected",
    ]
    assert df.height == 3 * 2 * 2 + 1 + 1  # streams x objectives x seeds, the grid run, the base
    base = df.filter(pl.col("stream") == "base").row(0, named=True)
    assert base["objective"] is None and base["reward_mean"] is None and base["ppl"] is None
    assert base["avg_at_k"] == pytest.approx(BASE_ACC)
    assert base["avg_at_k_math500"] == pytest.approx(BASE_ACC + 0.05)
    run = df.filter(
        (pl.col("stream") == "oracle_refined") & (pl.col("objective") == "dft") & (pl.col("seed") == 1)
    ).row(0, named=True)
    assert run["reward_mean"] == pytest.approx(1.70) and run["ppl"] == pytest.approx(1.85)
    assert run["avg_at_k"] == pytest.approx(0.3506) and run["rejected"] == 3
    assert df["avg_at_k"].drop_nulls().is_between(0, 1).all()


def test_table1_lists_streams_by_reward_with_their_utility(report):
    text = report["table1"].read_text()
    rows = markdown_rows(text)
    assert [r[0] for r in rows] == ["oracle_synthesized", "oracle_refined", "slm_rft"]
    for row, (name, (reward, _, sft, dft)) in zip(rows, STREAMS.items()):
        # mean over the two seeds, in %, not the grid run's 99%
        assert row == [name, f"{reward:.3f} ± 0.050", f"{100 * sft:.2f}", f"{100 * dft:.2f}"]
    assert "mean of 2 seeds" in text
    assert f"Base student (no fine-tuning): Avg@4 = {100 * BASE_ACC:.2f}%" in text
    assert (
        "ρ(reward, DFT Avg@4) across 3 streams = -1.00 (exact permutation p = 0.17: a negative correlation "
        "is not shown at alpha = 0.05)" in text
    )  # three streams: the smallest p is 1/6
    assert "is the exact reverse of the DFT utility ranking" in text
    assert "is not the exact reverse of the SFT utility ranking" in text


def test_mechanism_orders_streams_by_adaptation_cost(report):
    text = report["mechanism"].read_text().split("## Answers the grader could not extract")[0]
    rows = markdown_rows(text)
    assert [r[0] for r in rows] == ["slm_rft", "oracle_refined", "oracle_synthesized"]
    assert [float(r[1]) for r in rows] == [1.52, 1.85, 2.69]
    assert [r[6] for r in rows] == [f"{100 / ppl:.1f}" for ppl in (1.52, 1.85, 2.69)]  # the probe, in %
    # three streams: the smallest exact permutation p is 1/6, so the perfect correlation is not shown
    assert "ρ(PPL, DFT Avg@4) across 3 streams = -1.00 (exact permutation p = 0.17: a negative correlation is " in text
    assert "is not shown at alpha = 0.05)" in text
    assert "holds in every quarter Q1–Q4: yes" in text


def test_the_report_stage_writes_every_figure(report):
    assert sorted(p.name for p in report["figures"].iterdir()) == [
        "ppl_vs_utility.png",
        "retention.png",
        "reward_vs_utility.png",
        "segmented_ppl.png",
        "training_curves.png",
    ]


@pytest.fixture(scope="module")
def drawn(tmp_path_factory):
    """Every report figure drawn from the fake stage outputs, with the rows behind them."""
    tmp = tmp_path_factory.mktemp("figures")
    rows = _rows(tmp, *_inputs(tmp))
    return {stem: draw() for stem, draw in figures.figures(*rows, DEFAULTS, "builtin").items()}


def points(ax) -> set[tuple[float, float]]:
    """The (x, y) of every errorbar point of a panel."""
    return {(round(float(x), 6), round(float(y), 6)) for c in ax.containers for x, y in zip(*c.lines[0].get_data())}


@pytest.mark.parametrize("stem, column", [("reward_vs_utility", 0), ("ppl_vs_utility", 1)])
def test_utility_scatter_plots_each_stream_at_its_measure_and_its_mean_utility(drawn, stem, column):
    ax = drawn[stem].axes[0]
    expected = {(round(v[column], 6), round(100 * acc, 6)) for v in STREAMS.values() for acc in v[2:]}
    assert points(ax) == expected  # mean of the two seeds (acc - 0.01, acc + 0.01), in %
    assert {t.get_text() for t in ax.texts} == set(STREAMS)
    assert [tuple(line.get_ydata()) for line in ax.lines if line.get_linestyle() == "--"] == [(12.0, 12.0)]
    assert ax.get_ylabel() == "Avg@4 (%)" and STUDENT in ax.get_title()
    # reward reverses DFT utility exactly; PPL does too
    assert "DFT -1.00" in ax.get_title()
    assert ax.get_xlabel().startswith("reward (builtin)" if column == 0 else "student perplexity")


def test_segmented_ppl_draws_one_line_per_stream_over_the_four_quarters(drawn):
    ax = drawn["segmented_ppl"].axes[0]
    lines = {line.get_label(): line for line in ax.lines}
    assert set(lines) == {f"{name} (PPL {v[1]:.2f})" for name, v in STREAMS.items()}
    for name, v in STREAMS.items():
        line = lines[f"{name} (PPL {v[1]:.2f})"]
        assert list(line.get_xdata()) == [1, 2, 3, 4]
        assert np.allclose(line.get_ydata(), [v[1] * (1.3 - 0.1 * q) for q in range(1, 5)])


def test_training_curves_show_each_seed_and_their_mean_per_objective(drawn):
    axes = drawn["training_curves"].axes
    assert [ax.get_title() for ax in axes] == [f"{STUDENT} — SFT", f"{STUDENT} — DFT"]
    for ax in axes:
        means = {line.get_label(): line for line in ax.lines if line.get_label().endswith("(2 seeds)")}
        assert set(means) == {f"{name} (2 seeds)" for name in STREAMS}
        # the curves of seeds 0 and 1 are 1/s and 1/s + 0.01: their mean is 1/s + 0.005
        assert np.allclose(means["slm_rft (2 seeds)"].get_ydata(), [1 / s + 0.005 for s in range(1, 6)])
        assert len(ax.lines) == 3 * len(STREAMS)


def test_retention_figure_plots_each_rewritten_stream_at_its_similarity_and_judge_score():
    r = {
        "judge_score": {"mean": 4.5, "ci95_low": 4.3, "ci95_high": 4.7},
        "edit_similarity": {"mean": 0.8, "ci95_low": 0.78, "ci95_high": 0.82},
    }
    rows = [
        {"student": "tiny", "stream": "style_aligned", "retention": r},
        {"student": "tiny", "stream": "slm_rft", "retention": None},
    ]
    ax = figures.retention(rows, {"style_aligned": "C0", "slm_rft": "C1"}).axes[0]
    assert points(ax) == {(0.8, 4.5)}
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["style_aligned"]
    assert ax.get_xlabel() == "edit similarity to the student's source trace"


def test_single_stream_with_one_objective_reports_na_and_dash(tmp_path):
    streams, runs, base = _inputs(tmp_path, streams={"slm_rft": STREAMS["slm_rft"]}, objectives=("dft",))
    out = _build(tmp_path, streams, runs, base)
    text = out["table1"].read_text()
    assert markdown_rows(text) == [["slm_rft", "1.470 ± 0.050", "–", f"{100 * STREAMS['slm_rft'][3]:.2f}"]]
    assert "= n/a" in text
    assert (out["figures"] / "training_curves.png").exists()


def test_miswired_reward_summary_is_a_stage_error(tmp_path):
    streams, runs, base = _inputs(tmp_path)
    streams[0]["reward"]["builtin"] = streams[1]["reward"]["builtin"]
    with pytest.raises(SystemExit):  # the stage stops with the cause on the console and in its log
        _build(tmp_path, streams, runs, base)
    assert (
        "reward stream is 'oracle_refined', the workflow expected 'oracle_synthesized'"
        in (tmp_path / "report.log").read_text()
    )


def test_oracle_streams_table_counts_rejections_by_cause_and_shows_cost_and_retention():
    rows = [
        {
            "stream": "oracle_refined",
            "kept": 90,
            "rejected_reasons": {
                "no boxed answer": 4,
                "no boxed answer (cut off at max_tokens)": 2,
                "answer does not verify (wrong)": 3,
                "empty response": 1,
            },
            "oracle_usage": {
                "requests_sent": 100,
                "cached": 0,
                "failed": 1,
                "prompt_tokens": 50000,
                "completion_tokens": 20000,
                "estimated_cost": 0.4,
            },
            "retention": {
                "judge": "gpt",
                "judged": 80,
                "judge_score": {"mean": 4.5},
                "edit_similarity": {"mean": 0.8123},
            },
        },
        {"stream": "slm_rft", "kept": 100, "rejected_reasons": {}, "oracle_usage": None, "retention": None},
    ]
    text = "\n".join(oracle_streams_markdown(rows))
    assert markdown_rows(text) == [
        ["oracle_refined", "90", "6", "3", "1", "100", "0", "1", "50000", "20000", "0.40", "gpt", "80", "4.50", "0.812"]
    ]
    assert "slm_rft" not in text


# --- against the published numbers ------------------------------------------------------

# The published block as configs/paper.yaml writes it; our streams (STREAMS) have their own
# numbers, in the same reward order but with oracle_refined and oracle_synthesized swapped in PPL.
PUBLISHED = {
    "source": "a test",
    "student": STUDENT,
    "streams": {
        "oracle_synthesized": {
            "paper_row": "Oracle-Synthesized",
            "reward": 1.90,
            "sft": 23.26,
            "dft": 30.02,
            "ppl": 1.80,
        },
        "oracle_refined": {"paper_row": "Oracle-Refined", "reward": 1.70, "dft": 34.06, "ppl": 2.00},
        "slm_rft": {"paper_row": "SLM-RFT", "reward": 1.47, "dft": 37.06, "ppl": 1.52},
        "style_aligned": {"paper_row": "Style-Aligned", "reward": 1.37, "dft": 39.12},
    },
}


def _published(tmp, published=PUBLISHED):
    streams, runs, _ = _inputs(tmp)
    rows = published_comparison(published, collect_streams(streams, "builtin"), collect_runs(runs), DEFAULTS)
    return {(r["metric"], r["stream"]): r for r in rows}


def test_published_comparison_sets_ours_beside_the_published_value_in_the_papers_units(tmp_path):
    rows = _published(tmp_path)
    dft = rows[("dft", "oracle_refined")]
    assert dft["paper_row"] == "Oracle-Refined" and dft["published"] == pytest.approx(34.06)
    assert dft["ours"] == pytest.approx(34.06)  # mean of the seeds' 33.06 and 35.06, in %
    assert dft["difference"] == pytest.approx(0.0, abs=1e-9)
    sft = rows[("sft", "oracle_synthesized")]
    assert sft["ours"] == pytest.approx(23.26) and sft["difference"] == pytest.approx(0.0, abs=1e-9)
    reward = rows[("reward", "oracle_synthesized")]
    assert reward["ours"] == pytest.approx(1.88) and reward["difference"] == pytest.approx(-0.02)
    assert rows[("ppl", "oracle_refined")]["difference"] == pytest.approx(1.85 - 2.00)
    # not published (SFT of oracle_refined), not in this run (style_aligned): no difference
    assert math.isnan(rows[("sft", "oracle_refined")]["published"])
    assert math.isnan(rows[("sft", "oracle_refined")]["difference"])
    assert math.isnan(rows[("dft", "style_aligned")]["ours"])


def test_published_comparison_says_which_rankings_agree(tmp_path):
    streams, runs, base = _inputs(tmp_path)
    text = published_markdown(
        PUBLISHED, collect_streams(streams, "builtin"), collect_runs(runs), collect_base(base), DEFAULTS, "builtin"
    )
    ranking = {r[0]: r[1:4] for r in markdown_rows(text.split("## Do ours")[1].split("\n## ")[0])}
    # reward and DFT: same order of the three streams both have; PPL: refined and synthesized swap
    assert ranking["Reward (ours: builtin)"] == ["3", "+1.00", "yes"]
    assert ranking["DFT utility (Avg@4 here, %)"] == ["3", "+1.00", "yes"]
    assert ranking["Global PPL of the student"] == ["3", "+0.50", "no"]
    assert ranking["SFT utility (Avg@4 here, %)"] == ["1", "n/a", "n/a"]
    rows = markdown_rows(text)
    assert ["Oracle-Refined", "oracle_refined", "1.70", "1.70", "+0.00"] in rows
    assert ["Style-Aligned", "style_aligned", "39.12", "–", "–"] in rows


def test_published_comparison_for_a_student_not_in_the_run_is_a_stage_error(tmp_path):
    with pytest.raises(StageError, match="report.published.student"):
        _published(tmp_path, {**PUBLISHED, "student": "qwen_math_7b"})


def test_report_writes_the_published_comparison_only_when_asked(tmp_path):
    streams, runs, base = _inputs(tmp_path)
    _build(tmp_path, streams, runs, base)
    path = tmp_path / "report" / "published_comparison.md"
    assert not path.exists()
    _build(tmp_path, streams, runs, base, published=PUBLISHED)
    assert path.read_text().startswith("# Against the published numbers")
