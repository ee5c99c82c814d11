"""The mechanism: which measure of a stream's drift predicts what it does to the student.

One row per (student, stream): the stream's Oracle style (switch and strength, from its oracle's
config), the student's prior exposure to foreign styles (``foreign_style_fraction``), every reward
model's mean, the adaptation cost (global and Q1..Q4 perplexity, low-probability fraction,
Rank-Surprisal Ratio), the learnability probe (result-token top-1 accuracy), and the utility after
fine-tuning (mean over seeds, per objective). Across the rows of each (student, objective):
Spearman's rho of each measure with utility, with a permutation p-value (exact up to eight
streams), and partial correlations -- perplexity controlling for the probe, the probe controlling
for perplexity -- so a reader can tell whether perplexity predicts utility beyond what the
arithmetic's learnability explains. The verdict is generated from the numbers, whatever they say.
"""

import math
from collections import defaultdict

import numpy as np

from scripts.analysis.formatting import fmt, markdown_table, p_value, rho
from scripts.analysis.palette import markers, palette
from scripts.analysis.statistics import partial_spearman_test, spearman_test, verdict
from scripts.infrastructure.records import read_json

MEASURES = {
    "ppl": "perplexity",
    "ppl_q1": "Q1 perplexity",
    "ppl_q2": "Q2 perplexity",
    "ppl_q3": "Q3 perplexity",
    "ppl_q4": "Q4 perplexity",
    "low_prob_fraction": "low-probability fraction",
    "rsr": "Rank-Surprisal Ratio",
    "result_token_accuracy": "learnability probe",
}
# The direction each measure is claimed to go with utility: drift measures down, learnability up.
CLAIMED = {**dict.fromkeys(MEASURES, "less"), "result_token_accuracy": "greater"}


def variant(stream_spec: dict, oracles: dict) -> tuple[str, float]:
    """(switch, strength) of a stream: "native" for the student's own traces, "repair only" for
    Style-Aligned, a switch name with its strength for a one-switch style, "mixed" otherwise."""
    if stream_spec["kind"] == "slm_rft":
        return "native", 0.0
    if stream_spec["kind"] != "oracle":
        return stream_spec["kind"], math.nan
    if stream_spec["task"] == "style_align":
        return "repair only", 0.0
    if stream_spec["task"] == "synthesize":
        return "synthesis (fused steps)", math.nan
    style = {k: v for k, v in (oracles[stream_spec["oracle"]].get("style") or {}).items() if v > 0}
    if len(style) == 1:
        ((switch, strength),) = style.items()
        return switch, float(strength)
    return ("mixed: " + "+".join(sorted(style)) if style else "repair only"), max(style.values(), default=0.0)


def collect(streams: list[dict], runs: list[dict], stream_specs: dict, oracles: dict, exposure: dict) -> list[dict]:
    """One row per (student, stream) with its measures and its utility per objective."""
    utility: dict[tuple, list[float]] = defaultdict(list)
    for r in runs:
        utility[(r["student"], r["stream"], r["objective"])].append(read_json(r["eval"])["avg_at_k"])
    rows = []
    for s in streams:
        cost = read_json(s["adaptation_cost"])
        switch, strength = variant(stream_specs[s["stream"]], oracles)
        row = {
            "student": s["student"],
            "stream": s["stream"],
            "switch": switch,
            "strength": strength,
            "exposure": exposure[s["student"]],
            **{f"reward_{r}": read_json(path)["mean"] for r, path in s["reward"].items()},
            **{m: cost.get(m, math.nan) for m in MEASURES},
        }
        for (st, stream, objective), values in utility.items():
            if (st, stream) == (s["student"], s["stream"]):
                row[f"utility_{objective}"] = float(np.mean(values))
                row[f"utility_{objective}_sd"] = float(np.std(values, ddof=1)) if len(values) > 1 else math.nan
                row[f"seeds_{objective}"] = len(values)
        rows.append(row)
    return rows


def correlations(rows: list[dict], alpha: float = 0.05) -> list[dict]:
    """Per (student, objective) and measure: Spearman's rho with utility across streams, its
    permutation p-value in the claimed direction, and the partial correlations."""
    out = []
    rewards = sorted({k for r in rows for k in r if k.startswith("reward_")})
    objectives = sorted(
        {k.removeprefix("utility_") for r in rows for k in r if k.startswith("utility_") and not k.endswith("_sd")}
    )
    for student in dict.fromkeys(r["student"] for r in rows):
        mine = [r for r in rows if r["student"] == student]
        for objective in objectives:
            u = [r.get(f"utility_{objective}", math.nan) for r in mine]
            for m in [*MEASURES, *rewards]:
                t = spearman_test([r.get(m, math.nan) for r in mine], u, CLAIMED.get(m, "two-sided"))
                out.append(
                    {
                        "student": student,
                        "objective": objective,
                        "measure": m,
                        "kind": "rank",
                        **t,
                        "verdict": verdict(t["p"], alpha),
                        "alternative": CLAIMED.get(m, "two-sided"),
                    }
                )
            ppl, probe = [r["ppl"] for r in mine], [r["result_token_accuracy"] for r in mine]
            for m, x, z, alt in (("ppl | probe", ppl, probe, "less"), ("probe | ppl", probe, ppl, "greater")):
                t = partial_spearman_test(x, u, z, alt)
                out.append(
                    {
                        "student": student,
                        "objective": objective,
                        "measure": m,
                        "kind": "partial",
                        **t,
                        "verdict": verdict(t["p"], alpha),
                        "alternative": alt,
                    }
                )
    return out


def findings(corr: list[dict], alpha: float) -> list[str]:
    """Generated sentences: per (student, objective), which measures predict utility at alpha, the
    strongest one, and what the partial correlations add."""
    lines = []
    for key in dict.fromkeys((c["student"], c["objective"]) for c in corr):
        mine = [c for c in corr if (c["student"], c["objective"]) == key]
        rank = [c for c in mine if c["kind"] == "rank" and math.isfinite(c["rho"])]
        held = [c for c in rank if c["verdict"] == "holds"]
        best = max(rank, key=lambda c: abs(c["rho"]), default=None)
        partial = {c["measure"]: c for c in mine if c["kind"] == "partial"}
        text = f"- **{key[0]}, {key[1].upper()}** ({rank[0]['n'] if rank else 0} streams): "
        if held:
            text += "utility goes with " + ", ".join(
                f"{MEASURES.get(c['measure'], c['measure'])} (ρ {c['rho']:+.2f}, {p_value(c['p'])})" for c in held
            )
            text += f" at alpha = {alpha:g}"
        else:
            text += f"no measure predicts utility at alpha = {alpha:g}"
        if best:
            text += (
                f"; the strongest is {MEASURES.get(best['measure'], best['measure'])} (ρ {best['rho']:+.2f}, "
                f"{p_value(best['p'])})"
            )
        for m, c in partial.items():
            what = "perplexity controlling for the probe" if m.startswith("ppl") else "the probe controlling for PPL"
            text += f"; {what}: partial ρ {fmt(c['rho'], '+.2f')}, {p_value(c['p'])} ({c['verdict']})"
        lines.append(text + ".")
    return lines


def markdown(rows: list[dict], corr: list[dict], alpha: float) -> str:
    objectives = sorted(
        {k.removeprefix("utility_") for r in rows for k in r if k.startswith("utility_") and not k.endswith("_sd")}
    )
    rewards = sorted({k for r in rows for k in r if k.startswith("reward_")})
    header = [
        "student",
        "stream",
        "switch",
        "strength",
        "exposure",
        *(r.removeprefix("reward_") for r in rewards),
        "PPL",
        "PPL Q1",
        "PPL Q2",
        "PPL Q3",
        "PPL Q4",
        "low-prob",
        "RSR",
        "probe",
        *(f"{o.upper()} utility (%)" for o in objectives),
    ]
    body = [
        [
            r["student"],
            r["stream"],
            r["switch"],
            fmt(r["strength"], ".2f"),
            fmt(r["exposure"], ".2f"),
            *(fmt(r[k]) for k in rewards),
            *(fmt(r[m]) for m in MEASURES),
            *(
                fmt(r.get(f"utility_{o}"), ".1f", 100)
                + (f" ± {100 * r[f'utility_{o}_sd']:.1f}" if math.isfinite(r.get(f"utility_{o}_sd", math.nan)) else "")
                for o in objectives
            ),
        ]
        for r in rows
    ]
    corr_rows = [
        [
            c["student"],
            c["objective"].upper(),
            MEASURES.get(c["measure"], c["measure"]),
            c["kind"],
            rho(c["rho"]),
            f"{p_value(c['p']).removeprefix('p = ')} ({'exact' if c['exact'] else 'permutations'}, {c['alternative']})",
            c["verdict"],
        ]
        for c in corr
    ]
    return "\n".join(
        [
            "# The mechanism: which drift measure predicts utility",
            "",
            "One row per stream: its Oracle style (switch, strength), the student's prior exposure to foreign styles "
            "in pretraining, reward, adaptation cost, the learnability probe (the share of result tokens -- the number "
            "after '=' -- the student predicts first under teacher forcing) and utility after fine-tuning (mean ± sd "
            "over seeds).",
            "",
            markdown_table(header, body),
            "",
            "## Which measure predicts utility (generated from the numbers)",
            "",
            f"A measure predicts utility only where its permutation p-value, in the direction claimed (drift down, "
            f"learnability up), is below alpha = {alpha:g}.",
            "",
            *findings(corr, alpha),
            "",
            markdown_table(["student", "objective", "measure", "correlation", "ρ", "p", "verdict"], corr_rows),
            "",
        ]
    )


def dose_response_figure(
    rows: list[dict], measures=("ppl", "ppl_q1", "low_prob_fraction", "rsr", "result_token_accuracy", "reward_process")
):
    """Utility against each measure: one panel per measure, one colour per switch, filled
    markers for DFT and open ones for SFT, a marker shape per exposure level."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    measures = [m for m in measures if any(m in r for r in rows)]
    switches = list(dict.fromkeys(r["switch"] for r in rows))
    colors = palette(switches)
    exposures = sorted({r["exposure"] for r in rows})
    shapes = markers(exposures)
    fig, axes = plt.subplots(1, len(measures), figsize=(4.2 * len(measures), 4.0), squeeze=False, sharey=True)
    for ax, m in zip(axes[0], measures):
        for r in rows:
            for objective, face in (("dft", None), ("sft", "none")):
                u = r.get(f"utility_{objective}")
                if u is None or not math.isfinite(r.get(m, math.nan)):
                    continue
                ax.scatter(
                    r[m],
                    100 * u,
                    s=18 + 40 * (r["strength"] if math.isfinite(r["strength"]) else 0.5),
                    marker=shapes[r["exposure"]],
                    color=colors[r["switch"]],
                    facecolors=face if face else colors[r["switch"]],
                )
        ax.set_xlabel(MEASURES.get(m, m.replace("_", " ")))
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("utility (%)")
    handles = [plt.Line2D([], [], marker="o", ls="", color=colors[s], label=s) for s in switches]
    handles += [plt.Line2D([], [], marker=shapes[e], ls="", color="black", label=f"exposure {e:g}") for e in exposures]
    axes[0][-1].legend(handles=handles, fontsize=7, loc="best")
    fig.suptitle("Utility vs each drift measure (filled: DFT, open: SFT; size: strength)")
    fig.tight_layout()
    return fig
