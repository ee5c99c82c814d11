"""The paradox, measured: the study's claims tested per training setting, with intervals.

A *setting* is (student, objective, lr, batch size, epochs); each setting trains every stream
with the same seeds. Utility is Avg@k over all benchmark problems (the mean of the
per-benchmark means). Uncertainty comes from a paired two-level bootstrap: each round draws
seeds with replacement, then problems with replacement within each benchmark, and applies the
same draw to every stream of the setting, so differences and rank correlations between
streams get intervals that respect their pairing.

Claims (the paper's, restated for the organism), each judged from the numbers:

- C1 *perceived quality*: every oracle stream's mean reward is above SLM-RFT's (95% CIs apart);
- C2 *utility*: an oracle stream trains the student worse than SLM-RFT (the 95% interval of
  U(slm_rft) - U(oracle) lies above 0); per setting and per oracle stream;
- C3 *mechanism*: the student's perplexity on a stream predicts its utility (Spearman rho of
  PPL vs utility across streams is negative, its bootstrap interval below 0);
- C4 *repair*: Style-Aligned recovers the SLM-RFT-vs-Oracle-Refined gap: the recovered
  fraction (U(style_aligned) - U(oracle_refined)) / (U(slm_rft) - U(oracle_refined)), where
  C2 holds for oracle_refined.

The verdict section is generated from these numbers, so it stays true when they change.
"""

import math
from collections import defaultdict

import numpy as np

from scripts.analysis.collect import QUARTERS, collect_streams
from scripts.analysis.formatting import DASH, fmt, interval, markdown_table
from scripts.analysis.statistics import ci, spearman
from scripts.data.verification import verify_answers
from scripts.infrastructure.records import read_json, read_jsonl

SLM_RFT, REFINED, ALIGNED = "slm_rft", "oracle_refined", "style_aligned"


# --- utility per run, with a paired bootstrap --------------------------------------------


def per_problem_accuracy(samples_path: str) -> dict[str, dict[str, float]]:
    """benchmark -> problem id -> fraction of its k samples that are correct."""
    hits: dict[tuple, list[bool]] = defaultdict(list)
    for s in read_jsonl(samples_path):
        hits[(s["benchmark"], s["id"])].append(bool(s["correct"]))
    out: dict[str, dict[str, float]] = defaultdict(dict)
    for (bench, pid), v in hits.items():
        out[bench][pid] = sum(v) / len(v)
    return out


def utility_matrix(runs_by_stream: dict[str, list[dict]]) -> tuple[list[str], list[np.ndarray], list[int]]:
    """Streams, and per benchmark an array [stream, seed, problem] of accuracies, for the
    seeds every stream has (so the bootstrap pairs like with like)."""
    streams = list(runs_by_stream)
    seeds = sorted(set.intersection(*({r["seed"] for r in rs} for rs in runs_by_stream.values())))
    acc = {
        s: {r["seed"]: per_problem_accuracy(r["samples"]) for r in rs if r["seed"] in seeds}
        for s, rs in runs_by_stream.items()
    }
    first = acc[streams[0]][seeds[0]]
    blocks = []
    for bench in sorted(first):
        ids = sorted(first[bench])
        blocks.append(
            np.array([[[acc[s][seed][bench].get(i, math.nan) for i in ids] for seed in seeds] for s in streams])
        )
    return streams, blocks, seeds


def utilities(blocks: list[np.ndarray], seed_idx=None, problem_idx=None) -> np.ndarray:
    """Utility of each stream: mean over benchmarks of the mean over seeds and problems."""
    means = []
    for b, block in enumerate(blocks):
        x = block if seed_idx is None else block[:, seed_idx]
        x = x if problem_idx is None else x[:, :, problem_idx[b]]
        means.append(np.nanmean(x, axis=(1, 2)))
    return np.mean(means, axis=0)


def bootstrap(blocks: list[np.ndarray], rounds: int, seed: int) -> np.ndarray:
    """[round, stream] utilities under the paired two-level bootstrap."""
    rng = np.random.default_rng(seed)
    n_seeds = blocks[0].shape[1]
    out = np.empty((rounds, blocks[0].shape[0]))
    for i in range(rounds):
        seed_idx = rng.integers(0, n_seeds, n_seeds)
        problem_idx = [rng.integers(0, b.shape[2], b.shape[2]) for b in blocks]
        out[i] = utilities(blocks, seed_idx, problem_idx)
    return out


def _sign(c: dict) -> str:
    """holds / absent / reversed for an interval of a quantity the claim says is > 0."""
    if not math.isfinite(c["low"]):
        return "undetermined"
    return "holds" if c["low"] > 0 else "reversed" if c["high"] < 0 else "absent"


# --- one setting -------------------------------------------------------------------------


def analyse_setting(runs_by_stream: dict[str, list[dict]], streams: dict[str, dict], rounds: int, seed: int) -> dict:
    names, blocks, seeds = utility_matrix(runs_by_stream)
    point = utilities(blocks)
    boot = bootstrap(blocks, rounds, seed)
    idx = {s: i for i, s in enumerate(names)}
    out = {
        "seeds": seeds,
        "problems": int(sum(b.shape[2] for b in blocks)),
        "utility": {s: ci(boot[:, i], point[i]) for s, i in idx.items()},
    }
    oracle = [s for s in names if streams.get(s, {}).get("kind") == "oracle" and s != ALIGNED]
    if SLM_RFT in idx:
        out["gap"] = {
            o: ci(boot[:, idx[SLM_RFT]] - boot[:, idx[o]], point[idx[SLM_RFT]] - point[idx[o]]) for o in oracle
        }
    if {SLM_RFT, REFINED, ALIGNED} <= idx.keys():
        r, o, a = (idx[s] for s in (SLM_RFT, REFINED, ALIGNED))
        gap = boot[:, r] - boot[:, o]
        with np.errstate(divide="ignore", invalid="ignore"):
            frac = np.where(np.abs(gap) > 1e-12, (boot[:, a] - boot[:, o]) / gap, np.nan)
        g0 = point[r] - point[o]
        out["recovered"] = ci(frac, (point[a] - point[o]) / g0 if abs(g0) > 1e-12 else math.nan)
    for key in ("reward_mean", "ppl", *QUARTERS):
        x = [streams.get(s, {}).get(key, math.nan) for s in names]
        rhos = [spearman(x, list(b)) for b in boot]
        out.setdefault("rho", {})[key] = ci(rhos, spearman(x, list(point)))
    return out


# --- the whole sweep ---------------------------------------------------------------------


def setting_key(r: dict) -> tuple:
    return (r["student"], r["objective"], float(r["lr"]), int(r["batch_size"]), float(r["epochs"]))


def analyse(runs: list[dict], streams: dict[str, dict[str, dict]], rounds: int = 1000, seed: int = 0) -> list[dict]:
    """One record per setting (all its streams' runs), in budget order."""
    grouped: dict[tuple, dict[str, list[dict]]] = defaultdict(lambda: defaultdict(list))
    for r in runs:
        grouped[setting_key(r)][r["stream"]].append(r)
    out = []
    for key in sorted(grouped):
        student = key[0]
        rec = analyse_setting(grouped[key], streams[student], rounds, seed)
        out.append(
            {"student": student, "objective": key[1], "lr": key[2], "batch_size": key[3], "epochs": key[4], **rec}
        )
    return out


def fidelity(
    base_sampled: str,
    base_greedy: str,
    stream_files: dict[str, dict],
    solvable: str,
    facts: dict[str, dict],
    timeout_s: int = 3,
    workers: int = 1,
) -> dict:
    """Checks that the organism is what it claims to be; every kept trace is verified again
    against its reference answer with math-verify. Edit similarity to the source trace comes
    from the retention stage (oracle streams)."""
    solvable_ids = {r["id"] for r in read_jsonl(solvable)}
    out = {
        "base_sampled": read_json(base_sampled)["avg_at_k"],
        "base_greedy": read_json(base_greedy)["avg_at_k"],
        "streams": {},
    }
    for name, f in stream_files.items():
        kept, rejected = read_jsonl(f["stream"]), read_jsonl(f["rejected"])
        ids = {r["id"] for r in kept} | {r["id"] for r in rejected}
        verdicts = verify_answers(
            [(r["answer"], r["trace"]) for r in kept], timeout_s, workers, desc=f"verifying {name}"
        )
        out["streams"][name] = {
            "kept": len(kept),
            "rejected": len(rejected),
            "covers_solvable_set": ids == solvable_ids,
            "kept_verified": sum(v.correct for v in verdicts),
            "edit_similarity": (
                facts[name]["retention"]["edit_similarity"]["mean"]
                if facts.get(name, {}).get("retention")
                else math.nan
            ),
        }
    return out


# --- writing -----------------------------------------------------------------------------


def _pct(c: dict) -> str:
    return interval(c, ".1f", 100)


def _num(c: dict, spec="+.2f") -> str:
    return interval(c, spec, missing="n/a")


def _setting(s: dict) -> str:
    return f"{s['objective'].upper()} lr {s['lr']:g} bs {s['batch_size']} {s['epochs']:g} ep"


def verdict(settings: list[dict], streams: dict[str, dict[str, dict]]) -> list[str]:
    """Generated sentences: which claims hold, where, and where the effect fades or reverses."""
    lines = []
    for student, by_stream in streams.items():
        rft = by_stream.get(SLM_RFT)
        if rft:
            above = [
                s
                for s, v in by_stream.items()
                if v.get("kind") == "oracle" and v["reward_ci95_low"] > rft["reward_ci95_high"]
            ]
            oracle = [s for s, v in by_stream.items() if v.get("kind") == "oracle"]
            state = "holds" if oracle and set(above) == set(oracle) else "does not hold"
            lines.append(
                f"- **C1 (perceived quality)** {state} for {student}: {len(above)} of {len(oracle)} "
                f"oracle streams have a mean reward above SLM-RFT's with 95% intervals apart."
            )
    mine = [s for s in settings if "gap" in s]
    for o in sorted({o for s in mine for o in s["gap"]}):
        by = defaultdict(list)
        for s in mine:
            if o in s["gap"]:
                by[_sign(s["gap"][o])].append(_setting(s))
        lines.append(
            f"- **C2 (utility, {o} vs slm_rft)**: SLM-RFT trains better in {len(by['holds'])} of "
            f"{sum(map(len, by.values()))} settings"
            + (f"; no significant difference in {', '.join(by['absent'])}" if by["absent"] else "")
            + (f"; reversed (the oracle stream trains better) in {', '.join(by['reversed'])}" if by["reversed"] else "")
            + "."
        )
    by = defaultdict(list)
    for s in settings:
        r = s["rho"]["ppl"]
        state = (
            "undetermined"
            if not math.isfinite(r["high"])
            else "holds"
            if r["high"] < 0
            else "reversed"
            if r["low"] > 0
            else "absent"
        )
        by[state].append(_setting(s))
    lines.append(
        f"- **C3 (perplexity predicts utility)**: rho(PPL, utility) < 0 with its interval below 0 in "
        f"{len(by['holds'])} of {len(settings)} settings"
        + (f"; not significant in {', '.join(by['absent'])}" if by["absent"] else "")
        + (f"; positive in {', '.join(by['reversed'])}" if by["reversed"] else "")
        + (f"; undetermined (one seed, no spread) in {', '.join(by['undetermined'])}" if by["undetermined"] else "")
        + "."
    )
    rec = [s for s in settings if "recovered" in s and _sign(s["gap"].get(REFINED, {"low": math.nan})) == "holds"]
    if rec:
        full = [_setting(s) for s in rec if s["recovered"]["low"] >= 0.5]
        lines.append(
            f"- **C4 (Style-Aligned repairs the gap)**: where Oracle-Refined trains worse ({len(rec)} "
            f"settings), Style-Aligned recovers "
            + ", ".join(f"{100 * s['recovered']['value']:.0f}% ({_setting(s)})" for s in rec)
            + f" of the gap; at least half of it with 95% confidence in {len(full)} of them."
        )
    else:
        lines.append(
            "- **C4 (Style-Aligned repairs the gap)**: undetermined: in no setting does Oracle-Refined "
            "train significantly worse than SLM-RFT, so there is no gap to recover."
        )
    budgets = sorted({s["epochs"] for s in settings})
    if len(budgets) > 1:
        for obj in sorted({s["objective"] for s in settings}):
            held = {
                b: [
                    _sign(s["gap"][REFINED])
                    for s in mine
                    if s["objective"] == obj and s["epochs"] == b and REFINED in s["gap"]
                ]
                for b in budgets
            }
            fades = [b for b in budgets if held[b] and "holds" not in held[b]]
            lines.append(
                f"- **Budget ({obj.upper()})**: the Oracle-Refined gap holds at "
                + ", ".join(f"{b:g} ep ({held[b].count('holds')}/{len(held[b])} lr)" for b in budgets)
                + (f"; it is gone at {', '.join(f'{b:g}' for b in fades)} epochs." if fades else ".")
            )
    return lines


def markdown(
    settings: list[dict], streams: dict[str, dict[str, dict]], checks: dict[str, dict], k_label: str, rounds: int
) -> str:
    out = [
        "# The paradox, measured",
        "",
        f"Utility: {k_label} over all benchmark problems, mean over seeds; [95% interval] from a paired "
        f"bootstrap over seeds and problems ({rounds} rounds). Every setting the sweep ran is listed.",
        "",
        "## Verdict (generated from the numbers below)",
        "",
        *verdict(settings, streams),
        "",
    ]
    names = list(dict.fromkeys(s for st in settings for s in st["utility"]))
    out += [
        "## Utility per setting (%)",
        "",
        markdown_table(
            ["setting", "seeds", *names],
            [
                [
                    _setting(s),
                    str(len(s["seeds"])),
                    *(_pct(s["utility"][n]) if n in s["utility"] else DASH for n in names),
                ]
                for s in settings
            ],
        ),
    ]
    rows = []
    for s in settings:
        gaps = "; ".join(f"{o}: {interval(c, '+.1f', 100, missing='n/a')}" for o, c in s.get("gap", {}).items())
        rec = s.get("recovered")
        rows.append(
            [
                _setting(s),
                gaps or DASH,
                DASH if rec is None else interval(rec, ".0f", 100, missing="n/a") + " %",
                _num(s["rho"]["reward_mean"]),
                _num(s["rho"]["ppl"]),
                *(_num(s["rho"][q]) for q in QUARTERS),
            ]
        )
    out += [
        "",
        "## Claims per setting",
        "",
        markdown_table(
            [
                "setting",
                "U(slm_rft) − U(oracle) (pp)",
                "Style-Aligned recovers",
                "ρ(reward, U)",
                "ρ(PPL, U)",
                *(f"ρ({q.upper()[4:]}, U)" for q in QUARTERS),
            ],
            rows,
        ),
    ]
    out += ["", "## Fidelity of the organism", ""]
    for student, c in checks.items():
        out += [
            f"- {student}: base student {100 * c['base_greedy']:.1f}% greedy, {100 * c['base_sampled']:.1f}% "
            f"sampled ({k_label}).",
            "",
            markdown_table(
                [
                    "stream",
                    "kept",
                    "rejected",
                    "kept traces verified",
                    "covers the solvable set",
                    "edit similarity to the source trace",
                ],
                [
                    [
                        n,
                        str(v["kept"]),
                        str(v["rejected"]),
                        f"{v['kept_verified']}/{v['kept']}",
                        "yes" if v["covers_solvable_set"] else "NO",
                        fmt(v["edit_similarity"], ".3f"),
                    ]
                    for n, v in c["streams"].items()
                ],
            ),
        ]
    return "\n".join(out) + "\n"


def budget_figure(settings: list[dict], streams: list[str]):
    """Utility per stream against the training budget, one panel per objective and lr."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    objectives = sorted({s["objective"] for s in settings}, key=lambda o: (o != "sft", o))
    lrs = sorted({s["lr"] for s in settings})
    fig, axes = plt.subplots(
        len(lrs), len(objectives), figsize=(5.5 * len(objectives), 3.8 * len(lrs)), squeeze=False, sharey=True
    )
    colors = dict(zip(streams, plt.get_cmap("tab10").colors))
    for i, lr in enumerate(lrs):
        for j, obj in enumerate(objectives):
            ax = axes[i][j]
            cell = sorted((s for s in settings if s["lr"] == lr and s["objective"] == obj), key=lambda s: s["epochs"])
            for name in streams:
                pts = [(s["epochs"], s["utility"][name]) for s in cell if name in s["utility"]]
                if not pts:
                    continue
                x = [p[0] for p in pts]
                y = [100 * p[1]["value"] for p in pts]
                ax.plot(x, y, marker="o", color=colors[name], label=name)
                lo = [100 * p[1]["low"] for p in pts]
                hi = [100 * p[1]["high"] for p in pts]
                if all(map(math.isfinite, lo + hi)):
                    ax.fill_between(x, lo, hi, color=colors[name], alpha=0.15)
            ax.set_xscale("log")
            ax.set_xticks(sorted({s["epochs"] for s in cell}) or [1])
            ax.set_xticklabels([f"{e:g}" for e in sorted({s["epochs"] for s in cell})] or ["1"])
            ax.set_title(f"{obj.upper()}, lr {lr:g}")
            ax.set_xlabel("training budget (epochs)")
            ax.set_ylabel("Avg@k (%)")
            ax.grid(alpha=0.3)
    axes[0][-1].legend(fontsize=8)
    fig.suptitle("Utility vs training budget per stream (bands: 95% interval over seeds and problems)")
    fig.tight_layout()
    return fig


def stream_facts(streams: list[dict], stream_specs: dict, primary_reward: str) -> dict[str, dict[str, dict]]:
    """student -> stream -> the report's stream record (reward mean/CI, ppl, ppl_q1..q4) + kind."""
    out: dict[str, dict[str, dict]] = defaultdict(dict)
    for row in collect_streams(streams, primary_reward):
        out[row["student"]][row["stream"]] = {**row, "kind": stream_specs[row["stream"]]["kind"]}
    return dict(out)
