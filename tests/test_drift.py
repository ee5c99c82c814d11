"""Drift analyses (scripts/analysis/drift.py): the measures on hand-made token data, then the stage on the
tiny student's forward pass over a native-style and an oracle-notation stream."""

import math
import random
from types import SimpleNamespace

import numpy as np
import polars as pl
import pytest

from scripts.analysis import drift
from scripts.infrastructure.records import write_json, write_jsonl
from scripts.organism import word_problems as wp
from scripts.organism.styles import restyle

from conftest import run_stage


def stream(q1_ids, q1_nll, counts: dict, tokens_per_trace, text=None):
    ids = sorted(counts)
    return {
        "q1_token_ids": np.array(q1_ids, dtype=np.int32),
        "q1_nll": np.array(q1_nll, dtype=np.float32),
        "vocab_ids": np.array(ids, dtype=np.int32),
        "vocab_counts": np.array([counts[i] for i in ids]),
        "vocab_text": np.array([(text or {}).get(i, f"t{i}") for i in ids]),
        "tokens_per_trace": np.array(tokens_per_trace, dtype=np.int32),
    }


def test_jensen_shannon_is_zero_for_one_distribution_and_one_bit_for_disjoint_ones():
    p = {1: 0.5, 2: 0.5}
    assert drift.jensen_shannon_bits(p, p) == 0
    assert drift.jensen_shannon_bits(p, {3: 0.25, 4: 0.75}) == pytest.approx(1.0)
    assert 0 < drift.jensen_shannon_bits(p, {1: 0.9, 2: 0.1}) < 1


def test_q1_attribution_ranks_tokens_by_their_share_of_the_q1_loss():
    s = stream([1, 1, 2, 3, 1], [1.0, 1.0, 3.0, 0.0, 0.5], {1: 3, 2: 1, 3: 1}, [5], {1: "a b", 2: "\n", 3: "x"})
    df = drift.q1_loss_attribution({"s": s}, top=2)
    assert df["token_id"].to_list() == [2, 1] and df["rank"].to_list() == [1, 2]
    assert df["loss_share"].to_list() == pytest.approx([3 / 5.5, 2.5 / 5.5])
    assert df["token_share"].to_list() == pytest.approx([1 / 5, 3 / 5])
    assert df["mean_nll"].to_list() == pytest.approx([3.0, 2.5 / 3])
    assert df["token"].to_list() == ["↵", "a␣b"]  # whitespace made visible


def test_frequency_shift_against_the_reference_stream():
    ref = stream([], [], {1: 6, 2: 4}, [5, 5])
    other = stream([], [], {1: 2, 2: 4, 3: 2}, [4, 4])  # token 3 new, token 1 rarer, half the length
    summary, shifts = drift.frequency_shift({"slm_rft": ref, "oracle": other}, "slm_rft", top=5)
    rows = {r["stream"]: r for r in summary.iter_rows(named=True)}
    assert rows["slm_rft"]["jsd_bits"] == 0 and rows["slm_rft"]["compaction_ratio"] == 1
    assert rows["oracle"]["compaction_ratio"] == pytest.approx(0.8) and rows["oracle"]["jsd_bits"] > 0
    over = shifts.filter((pl.col("stream") == "oracle") & (pl.col("direction") == "over"))
    under = shifts.filter((pl.col("stream") == "oracle") & (pl.col("direction") == "under"))
    assert over["token_id"].to_list() == [3, 2] and over["delta_pp"].to_list() == pytest.approx([25.0, 10.0])
    assert under["token_id"].to_list() == [1] and under["delta_pp"].to_list() == pytest.approx([-35.0])
    assert set(shifts["stream"]) == {"oracle"}  # the reference is not compared with itself


class Params(dict):
    __getattr__ = dict.__getitem__


def adaptation_cost_stage(tmp_path, student, name, traces):
    src = tmp_path / "streams" / f"{name}.jsonl"
    write_jsonl(src, [{"id": str(i), "problem": p, "trace": t} for i, (p, t) in enumerate(traces)])
    out = tmp_path / "adaptation_cost" / name
    run_stage(
        "adaptation_cost",
        SimpleNamespace(
            input=SimpleNamespace(student=str(tmp_path / "student.json"), stream=str(src)),
            output=SimpleNamespace(per_trace=f"{out}.jsonl", summary=f"{out}.json", tokens=f"{out}.tokens.npz"),
            log=[str(tmp_path / "logs" / f"{name}.log")],
            threads=1,
            wildcards=SimpleNamespace(stream=name),
            # the test student (5 pretraining steps) is near uniform over its 320 tokens (p ~ 1/320):
            # a threshold just above that keeps the low-probability fraction informative
            params=Params(backend="transformers", vllm=None, batch_size=4, low_prob_threshold=0.004, rank_clip=100),
        ),
    )
    return out


@pytest.fixture(scope="module")
def drift_run(tiny_student, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("drift")
    write_json(tmp / "student.json", tiny_student)
    rng = random.Random(0)
    graphs = [wp.sample_graph(rng, rng.randint(2, 3), 60) for _ in range(12)]
    native = [(wp.problem_text(g), wp.native_solution(g, random.Random(i))) for i, g in enumerate(graphs)]
    oracle = [
        (p, restyle(t, {"notation": 1.0, "latex": 1.0, "spacing": 1.0}, str(i))) for i, (p, t) in enumerate(native)
    ]
    outs = {
        name: adaptation_cost_stage(tmp, tiny_student, name, traces)
        for name, traces in (("slm_rft", native), ("oracle_refined", oracle))
    }
    streams = list(outs)
    out_dir = tmp / "drift" / "tiny"

    def run(reference="slm_rft"):
        run_stage(
            "drift",
            SimpleNamespace(
                input=SimpleNamespace(
                    summaries=[f"{outs[s]}.json" for s in streams],
                    per_trace=[f"{outs[s]}.jsonl" for s in streams],
                    tokens=[f"{outs[s]}.tokens.npz" for s in streams],
                ),
                output=SimpleNamespace(drift=str(out_dir / "drift.md")),
                log=[str(tmp / "logs" / "drift.log")],
                threads=1,
                params=Params(streams=streams, reference_stream=reference, top_tokens=5),
            ),
        )

    run()
    return {"dir": out_dir, "run": run, "native": native, "oracle": oracle}


def test_the_stage_writes_every_table_and_figure_and_a_ready_to_include_page(drift_run):
    d = drift_run["dir"]
    for stem in ("q1_loss_attribution", "token_frequency_shift", "token_shift_top", "learner_compatibility"):
        assert pl.read_csv(d / f"{stem}.csv").height > 0
        assert (d / f"{stem}.md").read_text().count("\n|") >= 2
    for fig in ("q1_loss_attribution", "token_frequency_shift", "learner_compatibility"):
        assert (d / f"{fig}.png").stat().st_size > 5000
        assert f"({fig}.png)" in (d / "drift.md").read_text()


def test_the_oracle_notation_drifts_from_the_native_stream(drift_run):
    d = drift_run["dir"]
    shift = {r["stream"]: r for r in pl.read_csv(d / "token_frequency_shift.csv").iter_rows(named=True)}
    assert shift["slm_rft"]["jsd_bits"] == 0 and shift["oracle_refined"]["jsd_bits"] > 0.05
    native_len = np.mean([len(t) for _, t in drift_run["native"]])
    oracle_len = np.mean([len(t) for _, t in drift_run["oracle"]])
    assert (shift["oracle_refined"]["compaction_ratio"] > 1) == (oracle_len > native_len)
    top = pl.read_csv(d / "token_shift_top.csv").filter(pl.col("direction") == "over")
    assert top.height and all(r == 0 for r in top["reference_freq_pct"].head(1))  # LaTeX the student never wrote
    assert any("\\" in t or "(" in t for t in top["token"])
    compat = {r["stream"]: r for r in pl.read_csv(d / "learner_compatibility.csv").iter_rows(named=True)}
    assert compat["oracle_refined"]["ppl"] > compat["slm_rft"]["ppl"]
    assert 0 < compat["slm_rft"]["low_prob_fraction"] < compat["oracle_refined"]["low_prob_fraction"] < 1
    assert compat["oracle_refined"]["rsr"] > compat["slm_rft"]["rsr"]
    for r in compat.values():
        assert r["low_prob_ci95_low"] <= r["low_prob_per_trace"] <= r["low_prob_ci95_high"]
        assert r["rsr_ci95_low"] <= r["rsr_per_trace"] <= r["rsr_ci95_high"] and r["rsr"] > 0
    attribution = pl.read_csv(d / "q1_loss_attribution.csv")
    for s in ("slm_rft", "oracle_refined"):
        shares = attribution.filter(pl.col("stream") == s)["loss_share"].to_list()
        assert shares == sorted(shares, reverse=True) and 0 < sum(shares) <= 1 + 1e-9


def test_an_unknown_reference_stream_is_refused_naming_the_key(drift_run):
    with pytest.raises(SystemExit):
        drift_run["run"]("slm_rtf")
    assert "adaptation_cost.drift.reference_stream" in (drift_run["dir"].parents[1] / "logs" / "drift.log").read_text()


def test_markdown_cells_escape_pipes_and_show_missing_numbers():
    df = pl.DataFrame({"token": ["a|b"], "x": [math.nan]})
    text = drift.markdown(df, "T")
    assert "a\\|b" in text and "–" in text and text.startswith("### T")
