"""The mechanism analysis: a stream's style variant from its oracle's config, the per-stream table,
rank and partial correlations with permutation p-values, a verdict generated from them, and a
dose-response figure that plots what the rows say."""

import math

import numpy as np
import pytest

from scripts.analysis.mechanism import collect, correlations, dose_response_figure, findings, markdown, variant
from scripts.infrastructure.records import write_json

SWITCHES = ["wording", "layout", "latex", "spacing", "notation", "granularity"]


def test_a_streams_variant_is_read_from_its_oracles_style():
    oracles = {"a": {"style": {"latex": 0.5, "wording": 0.0}}, "b": {"style": {"latex": 1.0, "layout": 1.0}}}
    assert variant({"kind": "slm_rft"}, oracles) == ("native", 0.0)
    assert variant({"kind": "oracle", "task": "style_align", "oracle": "a"}, oracles) == ("repair only", 0.0)
    assert variant({"kind": "oracle", "task": "refine", "oracle": "a"}, oracles) == ("latex", 0.5)
    assert variant({"kind": "oracle", "task": "refine", "oracle": "b"}, oracles) == ("mixed: latex+layout", 1.0)
    assert variant({"kind": "reference"}, oracles)[0] == "reference"


@pytest.fixture
def experiment(tmp_path):
    """Seven streams whose utility falls with the probe (learnability) and not with perplexity."""
    rng = np.random.default_rng(0)
    probe = np.linspace(0.95, 0.45, 7)
    ppl = np.array([1.10, 1.60, 1.20, 1.50, 1.30, 1.45, 1.35])  # unrelated to the probe's order
    streams, runs, specs, oracles = [], [], {}, {}
    for i in range(7):
        name = "slm_rft" if i == 0 else f"s{i}"
        specs[name] = {"kind": "slm_rft"} if i == 0 else {"kind": "oracle", "task": "refine", "oracle": name}
        if i:
            oracles[name] = {"style": {SWITCHES[i - 1]: 1.0}}
        d = tmp_path / name
        write_json(
            d / "cost.json",
            {
                "ppl": ppl[i],
                **{f"ppl_q{q}": ppl[i] for q in range(1, 5)},
                "low_prob_fraction": 0.1 * ppl[i],
                "rsr": 2.0 + ppl[i],
                "result_token_accuracy": probe[i],
            },
        )
        write_json(d / "reward.json", {"mean": 0.9 + 0.01 * i})
        streams.append(
            {
                "student": "tiny",
                "stream": name,
                "reward": {"process": str(d / "reward.json")},
                "adaptation_cost": str(d / "cost.json"),
            }
        )
        for objective in ("sft", "dft"):
            for seed in range(3):
                path = d / f"{objective}{seed}.json"
                write_json(path, {"avg_at_k": 0.6 * probe[i] + 0.01 * rng.standard_normal()})
                runs.append(
                    {"student": "tiny", "stream": name, "objective": objective, "seed": seed, "eval": str(path)}
                )
    return collect(streams, runs, specs, oracles, {"tiny": 0.03})


def test_the_table_has_a_row_per_stream_with_measures_and_mean_utility(experiment):
    assert len(experiment) == 7 and experiment[0]["switch"] == "native" and experiment[1]["switch"] == "wording"
    assert experiment[0]["seeds_dft"] == 3 and experiment[0]["exposure"] == 0.03
    assert experiment[0]["utility_dft"] == pytest.approx(0.6 * 0.95, abs=0.02)
    assert math.isfinite(experiment[0]["utility_sft_sd"])


def test_the_probe_predicts_utility_and_perplexity_does_not(experiment):
    corr = {(c["objective"], c["measure"]): c for c in correlations(experiment)}
    probe, ppl = corr[("dft", "result_token_accuracy")], corr[("dft", "ppl")]
    assert probe["rho"] > 0.9 and probe["exact"] and probe["p"] < 0.01 and probe["verdict"] == "holds"
    assert ppl["verdict"] == "not shown" and ppl["p"] > 0.05
    assert corr[("dft", "probe | ppl")]["verdict"] == "holds"
    assert corr[("dft", "ppl | probe")]["verdict"] != "holds"  # nothing is left once the probe is known
    text = "\n".join(findings(list(corr.values()), 0.05))
    assert "the strongest is learnability probe" in text and "perplexity (ρ" not in text.split("strongest")[0]


def test_the_markdown_and_the_figure_show_every_stream(experiment):
    corr = correlations(experiment)
    text = markdown(experiment, corr, 0.05)
    assert all(r["stream"] in text for r in experiment)
    fig = dose_response_figure(experiment, measures=("ppl", "result_token_accuracy"))
    ppl_ax, probe_ax = fig.axes[:2]
    assert ppl_ax.get_xlabel() == "perplexity" and probe_ax.get_xlabel() == "learnability probe"
    xs = sorted(x for c in probe_ax.collections for x, _ in c.get_offsets())
    assert np.allclose(xs, sorted([r["result_token_accuracy"] for r in experiment] * 2))  # SFT and DFT points
    ys = sorted(y for c in probe_ax.collections for _, y in c.get_offsets())
    assert np.allclose(ys, sorted([100 * r[f"utility_{o}"] for r in experiment for o in ("sft", "dft")]))
