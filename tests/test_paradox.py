"""The paradox analysis: paired bootstrap utilities, the claims per setting, and a verdict
generated from the numbers (synthetic evaluation samples with known accuracies)."""

import math

import numpy as np
import pytest

from scripts.analysis.construction import by_construction
from scripts.analysis.paradox import (
    analyse,
    below_base,
    bootstrap,
    budget_figure,
    markdown,
    perceived_quality,
    utilities,
    utility_matrix,
    verdict_lines,
)
from scripts.infrastructure.records import write_jsonl

from conftest import markdown_rows

STREAMS = ("slm_rft", "oracle_refined", "style_aligned", "oracle_synthesized", "reference")
KINDS = {
    "slm_rft": "slm_rft",
    "reference": "reference",
    "oracle_refined": "oracle",
    "style_aligned": "oracle",
    "oracle_synthesized": "oracle",
}


def _samples(path, accuracy: float, rng, problems=40, k=4):
    rows = [
        {"benchmark": bench, "id": f"{bench}-{i}", "sample": j, "correct": bool(rng.random() < accuracy)}
        for bench in ("easy", "hard")
        for i in range(problems)
        for j in range(k)
    ]
    write_jsonl(path, rows)
    return str(path)


def _runs(tmp_path, accuracies: dict[str, float], epochs=3, objective="dft", seeds=(0, 1, 2)):
    rng = np.random.default_rng(int(epochs * 10) + len(objective))
    return [
        {
            "student": "tiny",
            "stream": s,
            "objective": objective,
            "lr": 3e-4,
            "batch_size": 16,
            "epochs": epochs,
            "seed": seed,
            "samples": _samples(tmp_path / f"{s}-{objective}-{epochs}-{seed}.jsonl", a, rng),
        }
        for s, a in accuracies.items()
        for seed in seeds
    ]


def _streams(ppl: dict[str, float]):
    rewards = {
        "slm_rft": 0.70,
        "oracle_refined": 0.99,
        "style_aligned": 0.98,
        "oracle_synthesized": 0.99,
        "reference": 0.97,
    }
    return {
        "tiny": {
            s: {
                "kind": KINDS[s],
                "reward_mean": rewards[s],
                "reward_ci95_low": rewards[s] - 0.01,
                "reward_ci95_high": rewards[s] + 0.01,
                "ppl": ppl[s],
                **{f"ppl_q{q}": ppl[s] * (1.2 - 0.05 * q) for q in range(1, 5)},
            }
            for s in STREAMS
        }
    }


PARADOX = {
    "slm_rft": 0.55,
    "oracle_refined": 0.15,
    "style_aligned": 0.50,
    "oracle_synthesized": 0.10,
    "reference": 0.20,
}
PPL = {"slm_rft": 1.2, "oracle_refined": 2.8, "style_aligned": 1.25, "oracle_synthesized": 3.0, "reference": 2.5}


def test_utility_is_the_mean_over_benchmarks_of_seed_and_problem_means(tmp_path):
    runs = _runs(tmp_path, {"slm_rft": 0.5, "oracle_refined": 0.2}, seeds=(0, 1))
    names, blocks, seeds = utility_matrix(
        {s: [r for r in runs if r["stream"] == s] for s in ("slm_rft", "oracle_refined")}
    )
    assert names == ["slm_rft", "oracle_refined"] and seeds == [0, 1]
    assert [b.shape for b in blocks] == [(2, 2, 40), (2, 2, 40)]
    direct = np.mean([blocks[0][0].mean(), blocks[1][0].mean()])
    assert utilities(blocks)[0] == pytest.approx(direct)


NO_CONSTRUCTION = {"C1": {}, "C4": {}}


def test_a_clear_paradox_holds_with_p_values_below_alpha(tmp_path):
    [s] = analyse(_runs(tmp_path, PARADOX), _streams(PPL), rounds=300)
    assert s["seed_level"] and s["gap"]["oracle_refined"]["low"] > 0.2 and s["gap"]["oracle_synthesized"]["low"] > 0.2
    assert s["gap"]["oracle_refined"]["verdict"] == "holds" and s["gap"]["oracle_refined"]["p"] < 0.01
    # five streams in exactly the reverse order of their perplexity: the exact permutation p is 1/120
    assert s["rho"]["ppl"]["rho"] == pytest.approx(-1.0) and s["rho"]["ppl"]["p"] == pytest.approx(1 / 120)
    assert s["rho"]["ppl"]["exact"] and s["rho"]["ppl"]["verdict"] == "holds"
    assert 0.7 < s["recovered"]["value"] < 1.1 and s["recovered"]["verdict"] == "holds"
    assert s["utility"]["slm_rft"]["low"] < 0.55 < s["utility"]["slm_rft"]["high"]
    lines = "\n".join(verdict_lines([s], {}, NO_CONSTRUCTION, 0.05, []))
    assert "SLM-RFT trains better in 1 of 1 settings" in lines
    assert "in 1 of 1 settings" in lines.split("C3")[1]


def test_a_rank_correlation_over_five_streams_is_not_shown_unless_its_exact_p_is_below_alpha(tmp_path):
    # utility: slm_rft > style_aligned > reference > oracle_refined > oracle_synthesized; these PPLs
    # rank the streams 1, 2, 4, 5, 3: Spearman's rho -0.7
    ppl = {"slm_rft": 1.2, "style_aligned": 1.25, "reference": 2.5, "oracle_refined": 3.0, "oracle_synthesized": 2.0}
    [s] = analyse(_runs(tmp_path, PARADOX), _streams(ppl), rounds=200)
    r = s["rho"]["ppl"]
    assert r["rho"] == pytest.approx(-0.7) and r["p"] == pytest.approx(14 / 120) and r["verdict"] == "not shown"
    assert "not shown in DFT lr 0.0003 bs 16 3 ep (p = 0.12)" in "\n".join(
        verdict_lines([s], {}, NO_CONSTRUCTION, 0.05, [])
    )


def test_the_verdict_reports_where_the_effect_is_not_shown_or_reverses(tmp_path):
    no_gap = {s: 0.4 for s in PARADOX}
    reversed_ = {**PARADOX, "oracle_refined": 0.8, "oracle_synthesized": 0.8}
    runs = _runs(tmp_path, PARADOX, epochs=1) + _runs(tmp_path, no_gap, epochs=3) + _runs(tmp_path, reversed_, epochs=9)
    settings = analyse(runs, _streams(PPL), rounds=300)
    assert [s["epochs"] for s in settings] == [1, 3, 9]
    text = "\n".join(verdict_lines(settings, {}, NO_CONSTRUCTION, 0.05, []))
    assert "SLM-RFT trains better in 1 of 3 settings" in text
    assert "not shown in DFT lr 0.0003 bs 16 3 ep (p = " in text
    assert "reversed (the oracle stream trains better) in DFT lr 0.0003 bs 16 9 ep" in text
    assert "it is not shown at 3, 9 epochs" in text


def test_seeds_are_resampled_only_from_three_seeds_on(tmp_path):
    two = _runs(tmp_path, {"slm_rft": 0.5, "oracle_refined": 0.2}, seeds=(0, 1))
    _, blocks, _ = utility_matrix({s: [r for r in two if r["stream"] == s] for s in ("slm_rft", "oracle_refined")})
    # seeds differ in what they drew: with two seeds the bootstrap keeps both, so a round over the
    # problems drawn in order reproduces the point estimate exactly
    blocks = [b.copy() for b in blocks]
    for b in blocks:
        b[:, 1] = 1 - b[:, 0]
    draws = bootstrap(blocks, rounds=50, seed=0)
    assert np.allclose(draws.mean(axis=1), 0.5)  # every draw averages the two seeds, never one twice
    [s] = analyse(two, _streams(PPL), rounds=50)
    assert not s["seed_level"]


def test_perceived_quality_is_a_paired_test_over_the_problems_both_streams_kept(tmp_path):
    rng = np.random.default_rng(0)
    rewards = {
        "slm_rft": rng.uniform(0.4, 0.6, 30),
        "oracle_refined": rng.uniform(0.6, 0.8, 30),
        "style_aligned": rng.uniform(0.4, 0.6, 30),
    }
    files = {}
    for name, values in rewards.items():
        write_jsonl(tmp_path / f"{name}.jsonl", [{"id": str(i), "reward": float(v)} for i, v in enumerate(values)])
        files[name] = str(tmp_path / f"{name}.jsonl")
    q = perceived_quality({"orm": files}, {n: {"kind": KINDS[n]} for n in rewards})["orm"]
    assert set(q) == {"oracle_refined", "style_aligned"}
    assert q["oracle_refined"]["verdict"] == "holds" and q["oracle_refined"]["problems"] == 30
    assert q["style_aligned"]["verdict"] == "not shown"


def test_what_holds_by_construction_is_named_and_learned_rewards_are_not(tmp_path):
    specs = {
        "slm_rft": {"kind": "slm_rft"},
        "oracle_refined": {"kind": "oracle", "task": "refine", "oracle": "b"},
        "style_aligned": {"kind": "oracle", "task": "style_align", "oracle": "b"},
    }
    c = by_construction(
        specs,
        {"b": {"backend": "builtin"}},
        {"process": {"backend": "builtin"}, "orm": {"backend": "sequence_classifier"}},
    )
    assert set(c["C1"]) == {"process"} and "" in c["C4"]
    api = by_construction(specs, {"b": {"backend": "openai"}}, {"process": {"backend": "builtin"}})
    assert api == NO_CONSTRUCTION


def test_streams_below_the_untrained_student_are_flagged_with_the_base(tmp_path):
    [s] = analyse(_runs(tmp_path, PARADOX), _streams(PPL), rounds=100)
    flagged = below_base([s], {"tiny": 0.3})
    assert {f["stream"] for f in flagged} == {"oracle_refined", "oracle_synthesized", "reference"}
    assert all(f["base"] == 0.3 and f["utility"] < 0.3 for f in flagged)


def test_one_seed_gives_problem_level_intervals_and_the_markdown_lists_every_setting(tmp_path):
    runs = _runs(tmp_path, PARADOX, seeds=(0,)) + _runs(tmp_path, PARADOX, objective="sft", seeds=(0,))
    settings = analyse(runs, _streams(PPL), rounds=200)
    assert all(math.isfinite(s["utility"]["slm_rft"]["low"]) for s in settings)
    checks = {
        "tiny": {
            "base_sampled": 0.3,
            "base_greedy": 0.35,
            "streams": {
                "style_aligned": {
                    "kept": 10,
                    "rejected": 0,
                    "covers_solvable_set": True,
                    "kept_verified": 10,
                    "edit_similarity": 0.97,
                }
            },
        }
    }
    text = markdown(settings, _streams(PPL), checks, "Avg@4", 200)
    assert "intervals are over problems only" in text
    rows = markdown_rows(text)
    assert {tuple(r[:2]) for r in rows if r[0].endswith(" ep")} >= {
        ("DFT lr 0.0003 bs 16 3 ep", "1"),
        ("SFT lr 0.0003 bs 16 3 ep", "1"),
    }
    assert "35.0% greedy, 30.0% sampled" in text and ["style_aligned", "10", "0", "10/10", "yes", "0.970"] in rows


def test_the_budget_figure_plots_each_streams_utility_against_the_epochs(tmp_path):
    runs = _runs(tmp_path, PARADOX, epochs=1) + _runs(tmp_path, PARADOX, epochs=3)
    settings = analyse(runs, _streams(PPL), rounds=100)
    ax = budget_figure(settings, list(PARADOX)).axes[0]
    assert ax.get_title() == "DFT, lr 0.0003" and ax.get_xlabel() == "training budget (epochs)"
    lines = {line.get_label(): line for line in ax.lines}
    assert set(lines) == set(PARADOX)
    for name in PARADOX:
        assert list(lines[name].get_xdata()) == [1, 3]
        expected = [100 * s["utility"][name]["value"] for s in settings]
        assert np.allclose(lines[name].get_ydata(), expected)
        assert abs(expected[0] - 100 * PARADOX[name]) < 10  # the accuracy the samples were drawn with


def test_fidelity_reverifies_kept_traces_and_checks_coverage(tmp_path):
    from scripts.analysis.paradox import fidelity
    from scripts.infrastructure.records import write_json

    write_jsonl(tmp_path / "solvable.jsonl", [{"id": "a"}, {"id": "b"}])
    write_json(tmp_path / "sampled.json", {"avg_at_k": 0.3})
    write_json(tmp_path / "greedy.json", {"avg_at_k": 0.9})
    files = {}
    for name, kept, rejected in (
        ("style_aligned", [("a", "so \\boxed{5}"), ("b", "so \\boxed{6}")], []),
        ("oracle_refined", [("a", "so \\boxed{7}")], ["b"]),
    ):
        write_jsonl(
            tmp_path / f"{name}.jsonl", [{"id": i, "answer": "5" if i == "a" else "6", "trace": t} for i, t in kept]
        )
        write_jsonl(tmp_path / f"{name}.rejected.jsonl", [{"id": i, "reason": "x"} for i in rejected])
        files[name] = {"stream": str(tmp_path / f"{name}.jsonl"), "rejected": str(tmp_path / f"{name}.rejected.jsonl")}
    facts = {"style_aligned": {"retention": {"edit_similarity": {"mean": 0.97}}}, "oracle_refined": {"retention": None}}
    out = fidelity(  # a generous timeout: a loaded machine must not turn a slow check into a wrong answer
        str(tmp_path / "sampled.json"),
        str(tmp_path / "greedy.json"),
        files,
        str(tmp_path / "solvable.jsonl"),
        facts,
        timeout_s=30,
    )
    assert (out["base_sampled"], out["base_greedy"]) == (0.3, 0.9)
    sa, ref = out["streams"]["style_aligned"], out["streams"]["oracle_refined"]
    assert (sa["kept"], sa["kept_verified"], sa["covers_solvable_set"], sa["edit_similarity"]) == (2, 2, True, 0.97)
    assert (ref["kept"], ref["kept_verified"], ref["covers_solvable_set"]) == (1, 0, True)  # 7 is not 5
    assert math.isnan(ref["edit_similarity"])


def test_the_budget_figure_gives_each_of_more_than_ten_streams_its_own_colour():
    # the mechanism config compares 13 streams; tab10 alone has 10 colours
    streams = [f"variant_{i}" for i in range(13)]
    settings = [
        {
            "student": "tiny",
            "objective": "sft",
            "lr": 3e-4,
            "epochs": e,
            "utility": {s: {"value": 0.01 * i, "low": 0.0, "high": 0.02 * i} for i, s in enumerate(streams)},
        }
        for e in (1, 3)
    ]
    lines = budget_figure(settings, streams).axes[0].lines
    assert [line.get_label() for line in lines] == streams
    assert len({line.get_color() for line in lines}) == 13


def test_with_several_students_each_setting_and_panel_names_its_student(tmp_path):
    runs = _runs(tmp_path, PARADOX)
    runs += [{**r, "student": "familiar"} for r in runs]
    streams = {**_streams(PPL), "familiar": _streams(PPL)["tiny"]}
    settings = analyse(runs, streams, rounds=50)
    assert [s["label"] for s in settings] == ["familiar DFT lr 0.0003 bs 16 3 ep", "tiny DFT lr 0.0003 bs 16 3 ep"]
    titles = [ax.get_title() for ax in budget_figure(settings, list(PARADOX)).axes]
    assert titles == ["familiar: DFT, lr 0.0003", "tiny: DFT, lr 0.0003"]
