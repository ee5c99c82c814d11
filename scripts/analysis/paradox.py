"""The paradox, measured: the study's claims tested per training setting, each with a p-value,
and a claim "holds" only at p < alpha (``report.alpha``); otherwise it is "not shown" and the
p-value says how far it was.

A *setting* is (student, objective, lr, batch size, epochs); each setting trains every stream
with the same seeds. Utility is Avg@k over all benchmark problems (the mean of the
per-benchmark means). Uncertainty comes from a paired bootstrap: each round draws problems with
replacement within each benchmark -- and seeds, where there are at least three -- and applies
the same draw to every stream of the setting, so differences between streams get intervals
that respect their pairing.

Claims (the paper's, restated for the organism):

- C1 *perceived quality*, per reward model: each oracle stream's rewards are above SLM-RFT's on
  the same problems (one-sided Wilcoxon signed-rank test over the problems both streams kept);
- C2 *utility*: an oracle stream trains the student worse than SLM-RFT: U(slm_rft) - U(oracle)
  > 0 (bootstrap p: the share of draws at or below 0); per setting and per oracle stream;
- C3 *mechanism*: the student's perplexity on a stream predicts its utility: Spearman's rho of
  PPL vs utility across streams is negative, with an exact permutation p-value (with five
  streams the smallest p is 1/120, and rho = -0.7 gives p = 0.12);
- C4 *repair*: Style-Aligned recovers at least half of the SLM-RFT-vs-Oracle-Refined gap:
  (U(style_aligned) - U(oracle_refined)) / (U(slm_rft) - U(oracle_refined)) > 1/2 (bootstrap
  p), where C2 holds for oracle_refined.

What holds *by construction* in the organism (``by_construction``) is labelled so and never
counted as evidence: the built-in oracle repairs every step from the computation graph the
built-in process reward checks (C1 with that reward), and the built-in Style-Aligned stream is
SLM-RFT with only its wrong numbers fixed (C4 with that oracle). Every stream that trains the
student below the untrained base is flagged, with the base beside it. The verdict section is
generated from the numbers, so it stays true when they change.
"""

import math
from collections import defaultdict

import numpy as np

from scripts.analysis.collect import QUARTERS, collect_streams
from scripts.analysis.construction import ALIGNED, REFINED, SLM_RFT
from scripts.analysis.formatting import DASH, fmt, interval, markdown_table, p_value
from scripts.analysis.palette import palette
from scripts.analysis.statistics import bootstrap_p, ci, spearman_test, verdict
from scripts.data.verification import verify_answers
from scripts.infrastructure.records import read_json, read_jsonl

MIN_SEEDS = 3  # fewer seeds: intervals over problems only


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
    """[round, stream] utilities under the paired bootstrap: problems drawn with replacement
    within each benchmark, and seeds too where there are at least ``MIN_SEEDS`` of them (with
    fewer, an interval over seeds would pretend to know a spread it never saw)."""
    rng = np.random.default_rng(seed)
    n_seeds = blocks[0].shape[1]
    out = np.empty((rounds, blocks[0].shape[0]))
    for i in range(rounds):
        seed_idx = rng.integers(0, n_seeds, n_seeds) if n_seeds >= MIN_SEEDS else None
        problem_idx = [rng.integers(0, b.shape[2], b.shape[2]) for b in blocks]
        out[i] = utilities(blocks, seed_idx, problem_idx)
    return out


# --- one setting -------------------------------------------------------------------------


def analyse_setting(
    runs_by_stream: dict[str, list[dict]], streams: dict[str, dict], rounds: int, seed: int, alpha: float = 0.05
) -> dict:
    names, blocks, seeds = utility_matrix(runs_by_stream)
    point = utilities(blocks)
    boot = bootstrap(blocks, rounds, seed)
    idx = {s: i for i, s in enumerate(names)}
    out = {
        "seeds": seeds,
        "seed_level": len(seeds) >= MIN_SEEDS,
        "problems": int(sum(b.shape[2] for b in blocks)),
        "utility": {s: ci(boot[:, i], point[i]) for s, i in idx.items()},
    }
    oracle = [s for s in names if streams.get(s, {}).get("kind") == "oracle" and s != ALIGNED]
    if SLM_RFT in idx:
        out["gap"] = {}
        for o in oracle:
            draws = boot[:, idx[SLM_RFT]] - boot[:, idx[o]]
            c = ci(draws, point[idx[SLM_RFT]] - point[idx[o]])
            c["p"], c["p_reversed"] = bootstrap_p(draws), bootstrap_p(-draws)
            c["verdict"] = verdict(c["p"], alpha)
            if c["verdict"] != "holds" and c["p_reversed"] < alpha:
                c["verdict"] = "reversed"
            out["gap"][o] = c
    if {SLM_RFT, REFINED, ALIGNED} <= idx.keys():
        r, o, a = (idx[s] for s in (SLM_RFT, REFINED, ALIGNED))
        gap = boot[:, r] - boot[:, o]
        with np.errstate(divide="ignore", invalid="ignore"):
            frac = np.where(np.abs(gap) > 1e-12, (boot[:, a] - boot[:, o]) / gap, np.nan)
        g0 = point[r] - point[o]
        rec = ci(frac, (point[a] - point[o]) / g0 if abs(g0) > 1e-12 else math.nan)
        rec["p"] = bootstrap_p(frac - 0.5)
        rec["verdict"] = verdict(rec["p"], alpha)
        out["recovered"] = rec
    out["rho"] = {}
    for key in ("reward_mean", "ppl", *QUARTERS):
        x = [streams.get(s, {}).get(key, math.nan) for s in names]
        t = spearman_test(x, list(point), alternative="less")
        out["rho"][key] = {**t, "verdict": verdict(t["p"], alpha)}
    return out


# --- the whole sweep ---------------------------------------------------------------------


def setting_key(r: dict) -> tuple:
    return (r["student"], r["objective"], float(r["lr"]), int(r["batch_size"]), float(r["epochs"]))


def analyse(
    runs: list[dict], streams: dict[str, dict[str, dict]], rounds: int = 1000, seed: int = 0, alpha: float = 0.05
) -> list[dict]:
    """One record per setting (all its streams' runs), in budget order."""
    grouped: dict[tuple, dict[str, list[dict]]] = defaultdict(lambda: defaultdict(list))
    for r in runs:
        grouped[setting_key(r)][r["stream"]].append(r)
    several_students = len({key[0] for key in grouped}) > 1
    out = []
    for key in sorted(grouped):
        student = key[0]
        rec = analyse_setting(grouped[key], streams[student], rounds, seed, alpha)
        setting = {"student": student, "objective": key[1], "lr": key[2], "batch_size": key[3], "epochs": key[4]}
        out.append({**setting, "label": _label(setting, several_students), **rec})
    return out


def perceived_quality(scores: dict[str, dict[str, str]], stream_specs: dict, alpha: float = 0.05) -> dict:
    """C1 per reward model: reward -> oracle stream -> the mean reward difference to SLM-RFT over
    the problems both kept, and a one-sided Wilcoxon signed-rank p-value ("the oracle stream's
    rewards are higher"). ``scores``: reward -> stream -> per-trace scores file."""
    from scipy.stats import wilcoxon

    out = {}
    for reward, files in scores.items():
        if SLM_RFT not in files:
            continue
        base = {r["id"]: r["reward"] for r in read_jsonl(files[SLM_RFT]) if r["reward"] is not None}
        out[reward] = {}
        for stream, path in files.items():
            if stream_specs.get(stream, {}).get("kind") != "oracle":
                continue
            mine = {r["id"]: r["reward"] for r in read_jsonl(path) if r["reward"] is not None}
            common = sorted(base.keys() & mine.keys())
            d = np.array([mine[i] - base[i] for i in common])
            if not len(d) or np.all(d == 0):
                p = math.nan if not len(d) else 1.0
            else:
                p = float(wilcoxon(d, alternative="greater").pvalue)
            out[reward][stream] = {
                "difference": float(d.mean()) if len(d) else math.nan,
                "problems": len(d),
                "p": p,
                "verdict": verdict(p, alpha),
            }
    return out


def below_base(settings: list[dict], base: dict[str, float]) -> list[dict]:
    """Every (setting, stream) whose utility is below the untrained student's (sampled) utility."""
    return [
        {
            "setting": s["label"],
            "stream": name,
            "utility": c["value"],
            "base": base[s["student"]],
            "interval_below": c["high"] < base[s["student"]],
        }
        for s in settings
        for name, c in s["utility"].items()
        if s["student"] in base and c["value"] < base[s["student"]]
    ]


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


def _claim(c: dict) -> str:
    """ "holds (p = ...)" / "not shown (p = ...)" of a tested record."""
    return f"{c['verdict']} ({p_value(c['p'])})"


def _label(s: dict, with_student: bool) -> str:
    """A setting's label; with several students in the run it names the student first."""
    label = f"{s['objective'].upper()} lr {s['lr']:g} bs {s['batch_size']} {s['epochs']:g} ep"
    return f"{s['student']} {label}" if with_student else label


def _count(settings: list[dict], get) -> dict[str, list[str]]:
    by = defaultdict(list)
    for s in settings:
        c = get(s)
        if c is not None:
            by[c["verdict"]].append(f"{s['label']} ({p_value(c['p'])})")
    return by


def verdict_lines(
    settings: list[dict], quality: dict, construction: dict, alpha: float, flagged: list[dict]
) -> list[str]:
    """Generated sentences: which claims hold at ``alpha``, where, what holds by construction."""
    lines = [f"A claim holds only where its p-value is below alpha = {alpha:g}; otherwise it is not shown."]
    for student, rewards in quality.items():
        for reward, by_stream in rewards.items():
            held = [st for st, c in by_stream.items() if c["verdict"] == "holds"]
            why = construction["C1"].get(reward)
            label = f" **By construction, not evidence:** {why}." if why else ""
            pairs = ", ".join(f"{st} {c['difference']:+.3f}, {p_value(c['p'])}" for st, c in by_stream.items())
            lines.append(
                f"- **C1 (perceived quality, {reward}, {student})**: oracle streams score higher than SLM-RFT in "
                f"{len(held)} of {len(by_stream)} ({pairs}).{label}"
            )
    for o in sorted({o for s in settings for o in s.get("gap", {})}):
        by = _count(settings, lambda s, o=o: s.get("gap", {}).get(o))
        n = sum(map(len, by.values()))
        lines.append(
            f"- **C2 (utility, {o} vs slm_rft)**: SLM-RFT trains better in {len(by['holds'])} of {n} "
            f"settings"
            + (f"; not shown in {', '.join(by['not shown'])}" if by["not shown"] else "")
            + (f"; reversed (the oracle stream trains better) in {', '.join(by['reversed'])}" if by["reversed"] else "")
            + "."
        )
    by = _count(settings, lambda s: s["rho"]["ppl"])
    lines.append(
        f"- **C3 (perplexity predicts utility)**: rho(PPL, utility) < 0 across streams (exact permutation "
        f"test) in {len(by['holds'])} of {len(settings)} settings"
        + (f"; not shown in {', '.join(by['not shown'])}" if by["not shown"] else "")
        + (f"; undetermined in {', '.join(by['undetermined'])}" if by["undetermined"] else "")
        + "."
    )
    rec = [s for s in settings if "recovered" in s and s["gap"].get(REFINED, {}).get("verdict") == "holds"]
    why = construction["C4"].get("")
    label = f" **By construction, not evidence:** {why}." if why else ""
    if rec:
        by = _count(rec, lambda s: s["recovered"])
        lines.append(
            f"- **C4 (Style-Aligned repairs the gap)**: where Oracle-Refined trains worse ({len(rec)} "
            f"settings), Style-Aligned recovers "
            + ", ".join(f"{100 * s['recovered']['value']:.0f}% ({s['label']})" for s in rec)
            + f" of the gap; at least half of it in {len(by['holds'])} of them.{label}"
        )
    else:
        lines.append(
            "- **C4 (Style-Aligned repairs the gap)**: undetermined: in no setting does Oracle-Refined "
            f"train worse than SLM-RFT at alpha = {alpha:g}, so there is no gap to recover.{label}"
        )
    budgets = sorted({s["epochs"] for s in settings})
    if len(budgets) > 1:
        for obj in sorted({s["objective"] for s in settings}):
            held = {
                b: [
                    s["gap"][REFINED]["verdict"]
                    for s in settings
                    if s["objective"] == obj and s["epochs"] == b and REFINED in s.get("gap", {})
                ]
                for b in budgets
            }
            fades = [b for b in budgets if held[b] and "holds" not in held[b]]
            lines.append(
                f"- **Budget ({obj.upper()})**: the Oracle-Refined gap holds at "
                + ", ".join(f"{b:g} ep ({held[b].count('holds')}/{len(held[b])} lr)" for b in budgets)
                + (f"; it is not shown at {', '.join(f'{b:g}' for b in fades)} epochs." if fades else ".")
            )
    if flagged:
        lines.append(
            f"- **Below the untrained student**: {len(flagged)} (setting, stream) pairs train the student to "
            "less than its own base utility (listed below)."
        )
    return lines


def markdown(
    settings: list[dict],
    streams: dict[str, dict[str, dict]],
    checks: dict[str, dict],
    k_label: str,
    rounds: int,
    quality: dict | None = None,
    construction: dict | None = None,
    alpha: float = 0.05,
) -> str:
    quality = quality or {}
    construction = construction or {"C1": {}, "C4": {}}
    base = {st: c["base_sampled"] for st, c in checks.items()}
    flagged = below_base(settings, base)
    seedless = [s for s in settings if not s["seed_level"]]
    out = [
        "# The paradox, measured",
        "",
        f"Utility: {k_label} over all benchmark problems, mean over seeds; [95% interval] from a paired bootstrap "
        f"({rounds} rounds) over problems, and over seeds where a setting has at least {MIN_SEEDS}"
        + (
            f" ({len(seedless)} of {len(settings)} settings have fewer: their intervals are over problems only, "
            "and say nothing of the spread between seeds)"
            if seedless
            else ""
        )
        + ". Every setting the sweep ran is listed.",
        "",
        "## Verdict (generated from the numbers below)",
        "",
        *verdict_lines(settings, quality, construction, alpha, flagged),
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
                    s["label"],
                    str(len(s["seeds"])),
                    *(_pct(s["utility"][n]) if n in s["utility"] else DASH for n in names),
                ]
                for s in settings
            ],
        ),
    ]
    rows = []
    for s in settings:
        gaps = "; ".join(
            f"{o}: {interval(c, '+.1f', 100, missing='n/a')}, {_claim(c)}" for o, c in s.get("gap", {}).items()
        )
        rec = s.get("recovered")
        rows.append(
            [
                s["label"],
                gaps or DASH,
                DASH if rec is None else f"{interval(rec, '.0f', 100, missing='n/a')} %, {_claim(rec)}",
                *(
                    f"{fmt(s['rho'][q]['rho'], '+.2f')}, {_claim(s['rho'][q])}"
                    for q in ("reward_mean", "ppl", *QUARTERS)
                ),
            ]
        )
    out += [
        "",
        "## Claims per setting",
        "",
        "Each cell: the estimate, then the verdict at alpha with its p-value (bootstrap p for the gap and the "
        "recovered share, exact permutation p for the rank correlations across streams).",
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
    if quality:
        out += [
            "",
            "## Perceived quality per reward model (C1)",
            "",
            markdown_table(
                [
                    "student",
                    "reward model",
                    "oracle stream",
                    "mean reward − SLM-RFT's",
                    "problems",
                    "verdict",
                    "by construction",
                ],
                [
                    [
                        st,
                        r,
                        s,
                        fmt(c["difference"], "+.3f"),
                        str(c["problems"]),
                        _claim(c),
                        "yes" if r in construction["C1"] else "no",
                    ]
                    for st, rewards in quality.items()
                    for r, by in rewards.items()
                    for s, c in by.items()
                ],
            ),
        ]
    out += ["", "## Streams that train the student below its untrained base", ""]
    out += [
        markdown_table(
            ["setting", "stream", "utility (%)", "base (%)", "interval below the base"],
            [
                [
                    f["setting"],
                    f["stream"],
                    fmt(f["utility"], ".1f", 100),
                    fmt(f["base"], ".1f", 100),
                    "yes" if f["interval_below"] else "no",
                ]
                for f in flagged
            ],
        )
        if flagged
        else "None."
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
    panels = sorted({(s["student"], s["lr"]) for s in settings})  # a row per student and lr
    several_students = len({student for student, _ in panels}) > 1
    fig, axes = plt.subplots(
        len(panels), len(objectives), figsize=(5.5 * len(objectives), 3.8 * len(panels)), squeeze=False, sharey=True
    )
    colors = palette(streams)
    for i, (student, lr) in enumerate(panels):
        for j, obj in enumerate(objectives):
            ax = axes[i][j]
            cell = sorted(
                (s for s in settings if (s["student"], s["lr"], s["objective"]) == (student, lr, obj)),
                key=lambda s: s["epochs"],
            )
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
            ax.set_title(f"{student}: {obj.upper()}, lr {lr:g}" if several_students else f"{obj.upper()}, lr {lr:g}")
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
