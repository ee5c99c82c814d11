"""Report: the paradox in tables and figures, computed from the stage outputs.

- ``streams.csv``: one row per training run (student, stream, objective, lr, batch size,
  seed) with the stream's perceived quality (reward), adaptation cost (student PPL, global
  and per quarter Q1..Q4) and the run's utility (Avg@k, overall and per benchmark); plus one
  ``base`` row per student for the untrained student. Accuracies are fractions in [0, 1].
- ``table1.md``: the paper's Table 1 -- streams by reward, SFT and DFT utility at the
  paper's setting, and whether the reward ranking is the exact reverse of the utility ranking.
- ``mechanism.md``: streams by adaptation cost, and how PPL tracks utility.
- figures: reward vs utility, PPL vs utility, segmented PPL, training curves.
- ``published_comparison.md`` (only when ``report.published`` is set, as configs/paper.yaml
  does): the published numbers next to ours for the student they refer to, the differences,
  and whether both order the streams the same way.
"""


import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless cluster nodes have no display

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import polars as pl  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402

from scripts.records import read_json  # noqa: E402
from scripts.stage import StageError, logged  # noqa: E402

OBJECTIVES = ("sft", "dft")  # the paper's utility columns; other objectives are appended
QUARTERS = ("ppl_q1", "ppl_q2", "ppl_q3", "ppl_q4")
BASE = "base"
DASH = "–"
DPI = 120


# --- statistics -------------------------------------------------------------------------

def average_ranks(values) -> np.ndarray:
    """1-based ranks; tied values share the mean of the positions they span."""
    x = np.asarray(values, dtype=float)
    order = np.argsort(x, kind="mergesort")
    ranks = np.empty(len(x))
    _, first, counts = np.unique(x[order], return_index=True, return_counts=True)
    for f, c in zip(first, counts):
        ranks[order[f:f + c]] = f + (c + 1) / 2
    return ranks


def _paired(x, y) -> tuple[np.ndarray, np.ndarray]:
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    keep = np.isfinite(x) & np.isfinite(y)
    return x[keep], y[keep]


def spearman(x, y) -> float:
    """Spearman rank correlation over the pairs where both values are finite; NaN when
    fewer than two pairs remain or one side is constant (the correlation is undefined)."""
    x, y = _paired(x, y)
    if len(x) < 2:
        return math.nan
    rx, ry = average_ranks(x), average_ranks(y)
    if rx.std() == 0 or ry.std() == 0:
        return math.nan
    return float(np.corrcoef(rx, ry)[0, 1])


def exact_reverse(x, y) -> bool | None:
    """Is the ranking by ``x`` the exact reverse of the ranking by ``y`` (ties included)?
    None where the rank correlation is undefined."""
    if math.isnan(spearman(x, y)):
        return None
    x, y = _paired(x, y)
    return bool(np.array_equal(average_ranks(x), len(x) + 1 - average_ranks(y)))


def same_ranking(x, y) -> bool | None:
    """Do ``x`` and ``y`` rank the pairs identically (ties included)? None where undefined."""
    return exact_reverse(x, [-v for v in y])


# --- inputs -----------------------------------------------------------------------------

def _num(v) -> float:
    return math.nan if v is None else float(v)


def _check(what: str, path, got, want) -> None:
    # A mis-wired input (one stream's file under another's name) would silently swap rows.
    if got is None:
        return
    same = math.isclose(float(got), float(want), rel_tol=1e-9) if isinstance(want, float) else got == want
    if not same:
        raise StageError(f"{path}: {what} is {got!r}, the workflow expected {want!r}")


def collect_streams(streams: list[dict], primary_reward: str) -> list[dict]:
    """One record per (student, stream): perceived quality, adaptation cost, rejections."""
    rows = []
    for s in streams:
        if primary_reward not in s["reward"]:
            raise StageError(f"stream {s['stream']} of {s['student']} has no {primary_reward!r} reward summary "
                             f"(have: {sorted(s['reward'])})")
        reward = read_json(s["reward"][primary_reward])
        cost = read_json(s["adaptation_cost"])
        summary = read_json(s["summary"])
        for what, path, doc in (("reward", s["reward"][primary_reward], reward),
                                ("adaptation cost", s["adaptation_cost"], cost),
                                ("stream summary", s["summary"], summary)):
            _check(f"{what} stream", path, doc.get("stream"), s["stream"])
        _check("reward model", s["reward"][primary_reward], reward.get("reward_model"), primary_reward)
        rows.append({"student": s["student"], "stream": s["stream"],
                     "reward_mean": _num(reward.get("mean")),
                     "reward_ci95_low": _num(reward.get("ci95_low")),
                     "reward_ci95_high": _num(reward.get("ci95_high")),
                     "ppl": _num(cost.get("ppl")),
                     **{q: _num(cost.get(q)) for q in QUARTERS},
                     "rejected": summary.get("rejected"), "kept": summary.get("kept"),
                     "rejected_reasons": summary.get("rejected_reasons") or {},
                     "oracle_usage": summary.get("oracle"),
                     "retention": read_json(s["retention"]) if s.get("retention") else None})
    return rows


def _scores(path) -> dict:
    ev = read_json(path)
    bench = {name: _num(b.get("avg_at_k")) for name, b in ev.get("benchmarks", {}).items()}
    overall = ev.get("avg_at_k")
    if overall is None:
        overall = float(np.mean(list(bench.values()))) if bench else math.nan
    return {"avg_at_k": _num(overall), "benchmarks": bench, "k": ev.get("k")}


def collect_runs(runs: list[dict]) -> list[dict]:
    """One record per training run: its setting, training summary and utility."""
    rows = []
    for r in runs:
        train = read_json(r["train"])
        for key in ("objective", "seed", "lr", "batch_size", "epochs"):
            want = float(r[key]) if key in ("lr", "epochs") else r[key]
            _check(key, r["train"], train.get(key), want)
        rows.append({"student": r["student"], "stream": r["stream"], "objective": r["objective"],
                     "lr": float(r["lr"]), "batch_size": int(r["batch_size"]), "epochs": float(r["epochs"]),
                     "seed": int(r["seed"]), "eval": r["eval"],
                     "n_examples": train.get("n_examples"), "final_loss": _num(train.get("final_loss")),
                     "curve": r["curve"], **_scores(r["eval"])})
    return rows


def collect_base(base: list[dict]) -> list[dict]:
    """The untrained student's utility: the floor every stream should lift."""
    return [{"student": b["student"], **_scores(b["eval"])} for b in base]


# --- shared helpers ---------------------------------------------------------------------

def _ordered(values) -> list:
    """Unique values in order of first appearance (the config's order)."""
    return list(dict.fromkeys(values))


def _objectives(run_rows: list[dict], lead=OBJECTIVES) -> list[str]:
    return list(lead) + sorted({r["objective"] for r in run_rows} - set(lead))


def _at_defaults(run_rows: list[dict], defaults: dict) -> list[dict]:
    return [r for r in run_rows if math.isclose(r["lr"], float(defaults["lr"]), rel_tol=1e-9)
            and r["batch_size"] == int(defaults["batch_size"])
            and math.isclose(r["epochs"], float(defaults["epochs"]), rel_tol=1e-9)]


def utility(run_rows: list[dict], defaults: dict) -> dict:
    """(student, stream, objective) -> {avg_at_k: mean over seeds, lo, hi: seed range, seeds}
    at the Table 1 setting; runs whose Avg@k is missing do not count as seeds."""
    groups: dict[tuple, list[float]] = {}
    for r in _at_defaults(run_rows, defaults):
        if math.isfinite(r["avg_at_k"]):
            groups.setdefault((r["student"], r["stream"], r["objective"]), []).append(r["avg_at_k"])
    return {key: {"avg_at_k": float(np.mean(v)), "lo": min(v), "hi": max(v), "seeds": len(v)}
            for key, v in groups.items()}


def _utility_of(util: dict, student: str, rows: list[dict], objective: str) -> list[float]:
    """Avg@k of each stream in ``rows`` under ``objective`` (NaN where there is no run)."""
    return [util.get((student, s["stream"], objective), {}).get("avg_at_k", math.nan) for s in rows]


def _k_label(records: list[dict]) -> str:
    ks = {r["k"] for r in records if r.get("k") is not None}
    return f"Avg@{ks.pop()}" if len(ks) == 1 else "Avg@k"


def _setting(d: dict) -> str:
    return f"lr {d['lr']:g}, batch size {d['batch_size']}, {d['epochs']:g} epochs"


def _fmt(v, spec: str = ".3f", scale: float = 1.0) -> str:
    return DASH if v is None or not math.isfinite(v) else format(v * scale, spec)


def _reward_cell(s: dict) -> str:
    half = (s["reward_ci95_high"] - s["reward_ci95_low"]) / 2
    if not math.isfinite(s["reward_mean"]):
        return DASH
    return _fmt(s["reward_mean"]) + ("" if not math.isfinite(half) else f" ± {half:.3f}")


def _md_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows])


def _student_streams(student: str, stream_rows: list[dict], run_rows: list[dict]) -> list[dict]:
    """The student's stream records, plus empty ones for streams that only have runs."""
    have = {s["stream"]: s for s in stream_rows if s["student"] == student}
    empty = {"reward_mean": math.nan, "reward_ci95_low": math.nan, "reward_ci95_high": math.nan,
             "ppl": math.nan, **{q: math.nan for q in QUARTERS}, "rejected": None}
    names = _ordered([*have, *(r["stream"] for r in run_rows if r["student"] == student)])
    return [have.get(n, {"student": student, "stream": n, **empty}) for n in names]


def _by_desc(rows: list[dict], key: str) -> list[dict]:
    # NaN sorts last; ties keep the config's order.
    return sorted(rows, key=lambda s: (not math.isfinite(s[key]), -s[key] if math.isfinite(s[key]) else 0))


def _by_asc(rows: list[dict], key: str) -> list[dict]:
    return sorted(rows, key=lambda s: (not math.isfinite(s[key]), s[key] if math.isfinite(s[key]) else 0))


def _across(n: int) -> str:
    return f"across {n} stream{'' if n == 1 else 's'}"


def _rho(v: float) -> str:
    return "n/a" if math.isnan(v) else f"{v:+.2f}"


def _students(stream_rows, run_rows, base_rows) -> list[str]:
    return _ordered([r["student"] for r in [*stream_rows, *run_rows, *base_rows]])


# --- streams.csv ------------------------------------------------------------------------

def streams_frame(stream_rows: list[dict], run_rows: list[dict], base_rows: list[dict]) -> pl.DataFrame:
    """The long table behind every other output: one row per run, one base row per student,
    and one row (no run columns) for a stream that has no runs."""
    benches = sorted({b for r in [*run_rows, *base_rows] for b in r["benchmarks"]})
    schema = {"student": pl.String, "stream": pl.String, "objective": pl.String, "lr": pl.Float64,
              "batch_size": pl.Int64, "epochs": pl.Float64, "seed": pl.Int64, "n_examples": pl.Int64,
              "reward_mean": pl.Float64, "reward_ci95_low": pl.Float64, "reward_ci95_high": pl.Float64,
              "ppl": pl.Float64, **{q: pl.Float64 for q in QUARTERS}, "final_loss": pl.Float64,
              "avg_at_k": pl.Float64, **{f"avg_at_k_{b}": pl.Float64 for b in benches}, "rejected": pl.Int64}
    stream_cols = ["reward_mean", "reward_ci95_low", "reward_ci95_high", "ppl", *QUARTERS, "rejected"]
    rows = []
    for student in _students(stream_rows, run_rows, base_rows):
        for b in (b for b in base_rows if b["student"] == student):
            rows.append({"student": student, "stream": BASE, "avg_at_k": b["avg_at_k"],
                         **{f"avg_at_k_{k}": v for k, v in b["benchmarks"].items()}})
        for s in _student_streams(student, stream_rows, run_rows):
            mine = sorted((r for r in run_rows if r["student"] == student and r["stream"] == s["stream"]),
                          key=lambda r: (r["objective"], r["lr"], r["batch_size"], r["epochs"], r["seed"]))
            info = {c: s[c] for c in stream_cols}
            if not mine:
                rows.append({"student": student, "stream": s["stream"], **info})
            for r in mine:
                rows.append({**{c: r[c] for c in ("student", "stream", "objective", "lr", "batch_size",
                                                  "epochs", "seed", "n_examples", "final_loss", "avg_at_k")},
                             **info, **{f"avg_at_k_{k}": v for k, v in r["benchmarks"].items()}})
    df = pl.DataFrame([{c: row.get(c) for c in schema} for row in rows], schema=schema, orient="row")
    # NaN and null both mean "not measured"; one spelling keeps the CSV easy to read back.
    return df.with_columns(pl.col(pl.Float64).fill_nan(None))


# --- table1.md and mechanism.md ---------------------------------------------------------

def table1_markdown(stream_rows: list[dict], run_rows: list[dict], base_rows: list[dict],
                    defaults: dict, primary_reward: str) -> str:
    """Table 1 per student: streams by reward (descending) against SFT/DFT utility."""
    util = utility(run_rows, defaults)
    objectives = _objectives(run_rows)
    k = _k_label([*run_rows, *base_rows])
    out = ["# Table 1: perceived quality vs utility", ""]
    for student in _students(stream_rows, run_rows, base_rows):
        rows = _by_desc(_student_streams(student, stream_rows, run_rows), "reward_mean")
        header = ["Stream", f"Reward ({primary_reward})", *(f"{o.upper()} {k} (%)" for o in objectives)]
        body = [[s["stream"], _reward_cell(s),
                 *(_fmt(util.get((student, s["stream"], o), {}).get("avg_at_k"), ".2f", 100) for o in objectives)]
                for s in rows]
        out += [f"## {student}", "", _md_table(header, body), ""]
        for b in (b for b in base_rows if b["student"] == student):
            out.append(f"Base student (no fine-tuning): {k} = {_fmt(b['avg_at_k'], '.2f', 100)}%.")
        seeds = sorted({v["seeds"] for (st, _, _), v in util.items() if st == student})
        n = DASH if not seeds else str(seeds[0]) if len(seeds) == 1 else f"{seeds[0]}–{seeds[-1]}"
        out.append(f"Reward: mean ± 95% CI half-width of {primary_reward} over the stream's traces. "
                   f"{k}: mean of {n} seeds at {_setting(defaults)}; "
                   f"{DASH} = no run.")
        out.append("")
        reward = [s["reward_mean"] for s in rows]
        for o in sorted(objectives, key=lambda o: o != "dft"):  # DFT is the paper's headline
            acc = _utility_of(util, student, rows, o)
            rho, rev = spearman(reward, acc), exact_reverse(reward, acc)
            n_pairs = len(_paired(reward, acc)[0])
            verdict = (" (fewer than two streams with both values, or no spread)" if rev is None else
                       f"; the reward ranking {'is' if rev else 'is not'} the exact reverse of the "
                       f"{o.upper()} utility ranking")
            out.append(f"- Spearman ρ(reward, {o.upper()} {k}) {_across(n_pairs)} = {_rho(rho)}{verdict}.")
        out.append("")
    return "\n".join(out)


def mechanism_markdown(stream_rows: list[dict], run_rows: list[dict], base_rows: list[dict],
                       defaults: dict) -> str:
    """Streams by adaptation cost (student PPL, ascending) against reward and utility."""
    util = utility(run_rows, defaults)
    objectives = _objectives(run_rows, lead=tuple(reversed(OBJECTIVES)))
    k = _k_label([*run_rows, *base_rows])
    out = ["# Mechanism: adaptation cost (student perplexity) vs utility", ""]
    for student in _students(stream_rows, run_rows, base_rows):
        rows = _by_asc(_student_streams(student, stream_rows, run_rows), "ppl")
        header = ["Stream", "PPL", "PPL Q1", "PPL Q2", "PPL Q3", "PPL Q4", "Reward",
                  *(f"{k} {o.upper()} (%)" for o in objectives)]
        body = [[s["stream"], _fmt(s["ppl"]), *(_fmt(s[q]) for q in QUARTERS), _fmt(s["reward_mean"]),
                 *(_fmt(util.get((student, s["stream"], o), {}).get("avg_at_k"), ".2f", 100) for o in objectives)]
                for s in rows]
        out += [f"## {student}", "", _md_table(header, body), "",
                f"{k} at {_setting(defaults)}, mean over seeds.", ""]
        ppl = [s["ppl"] for s in rows]
        for o in objectives:
            acc = _utility_of(util, student, rows, o)
            out.append(f"- Spearman ρ(PPL, {o.upper()} {k}) {_across(len(_paired(ppl, acc)[0]))} "
                       f"= {_rho(spearman(ppl, acc))}.")
        # The paper's claim: the drift is not confined to one part of the trace.
        holds = [same_ranking(ppl, [s[q] for s in rows]) for q in QUARTERS]
        verdict = ("n/a" if any(h is None for h in holds)
                   else "yes" if all(holds) else
                   "no (differs in " + ", ".join(f"Q{i + 1}" for i, h in enumerate(holds) if not h) + ")")
        out += [f"- The global PPL ordering of streams holds in every quarter Q1–Q4: {verdict}.", ""]
        out += oracle_streams_markdown([s for s in stream_rows if s["student"] == student])
    return "\n".join(out)


def _reason_counts(reasons: dict) -> tuple[int, int, int]:
    """(no boxed answer, answer does not verify, other) among a stream's rejections."""
    boxed = sum(n for r, n in reasons.items() if r.startswith("no boxed answer"))
    wrong = sum(n for r, n in reasons.items() if r.startswith("answer does not verify"))
    return boxed, wrong, sum(reasons.values()) - boxed - wrong


def oracle_streams_markdown(rows: list[dict]) -> list[str]:
    """The oracle streams: what the oracle was asked and cost, what was kept out and why, and
    how much of the source trace each rewrite retains."""
    rows = [s for s in rows if s.get("oracle_usage") is not None or s.get("retention") is not None]
    if not rows:
        return []
    header = ["Stream", "Kept", "Rejected: no boxed answer", "Rejected: answer does not verify", "Rejected: other",
              "Requests sent", "Cached", "Failed", "Prompt tokens", "Completion tokens", "Est. cost (USD)",
              "Judge retention (1–5)", "Edit similarity"]
    body = []
    for s in rows:
        u, r = s.get("oracle_usage") or {}, s.get("retention") or {}
        judge, sim = r.get("judge_score") or {}, r.get("edit_similarity") or {}
        body.append([s["stream"], str(s.get("kept") or 0), *map(str, _reason_counts(s["rejected_reasons"])),
                     *(str(u.get(key, DASH)) for key in ("requests_sent", "cached", "failed", "prompt_tokens",
                                                          "completion_tokens")),
                     _fmt(u.get("estimated_cost"), ".2f") if u else DASH,
                     _fmt(judge.get("mean"), ".2f"), _fmt(sim.get("mean"), ".3f")])
    return ["### Oracle streams: requests, cost, rejections, retention", "", _md_table(header, body), "",
            "Requests and tokens count every request of the stream's job (cached answers cost nothing again); "
            "the built-in oracle sends none. Retention: the stream's oracle as judge (1–5, formatting ignored) "
            "and difflib edit similarity to the student's source trace.", ""]


# --- published_comparison.md ------------------------------------------------------------

# The published metrics: the keys of report.published.streams.<stream>, in the paper's units.
PUBLISHED_METRICS = ("reward", "sft", "dft", "ppl", "retention")


def _our_value(metric: str, s: dict, util: dict) -> float:
    """Our value of a published metric for one stream record (utility in %, as published)."""
    if metric in OBJECTIVES:
        return 100 * util.get((s["student"], s["stream"], metric), {}).get("avg_at_k", math.nan)
    if metric == "retention":
        return _num(((s.get("retention") or {}).get("judge_score") or {}).get("mean"))
    return s[{"reward": "reward_mean", "ppl": "ppl"}[metric]]


def published_comparison(published: dict, stream_rows: list[dict], run_rows: list[dict],
                         defaults: dict) -> list[dict]:
    """One record per (metric, published row): the published value, ours and ours - published
    (NaN where either is missing), for the student the published numbers refer to."""
    student = published["student"]
    ours = {s["stream"]: s for s in _student_streams(student, stream_rows, run_rows)}
    if not ours:
        raise StageError(f"report.published.student: {student!r} has no streams in this run "
                         f"(students: {_ordered(s['student'] for s in stream_rows)})")
    util = utility(run_rows, defaults)
    rows = []
    for metric in PUBLISHED_METRICS:
        for stream, pub in published["streams"].items():
            p = _num(pub.get(metric))
            o = _our_value(metric, ours[stream], util) if stream in ours else math.nan
            rows.append({"metric": metric, "paper_row": pub["paper_row"], "stream": stream,
                         "published": p, "ours": o, "difference": o - p})
    return rows


def published_markdown(published: dict, stream_rows: list[dict], run_rows: list[dict], base_rows: list[dict],
                       defaults: dict, primary_reward: str) -> str:
    """The published numbers next to ours, per metric, and whether both rank the streams alike."""
    rows = published_comparison(published, stream_rows, run_rows, defaults)
    k = _k_label([*run_rows, *base_rows])
    labels = {"reward": f"Reward (ours: {primary_reward})", "sft": f"SFT utility ({k} here, %)",
              "dft": f"DFT utility ({k} here, %)", "ppl": "Global PPL of the student",
              "retention": "Semantic retention (judge, 1–5)"}
    out = ["# Against the published numbers", "",
           f"Published: {published['source']}. Ours: student {published['student']}; reward = mean "
           f"{primary_reward} over the stream's traces; utility = {k} at {_setting(defaults)}, mean over seeds; "
           f"PPL = the student's global perplexity on the stream; retention = the judge's 1–5 score of a rewrite "
           f"against its source trace. A difference means something only where the setting matches the paper's "
           f"(same reward model, benchmarks, k, training setting); the rankings compare the order of the streams "
           f"whatever the scale. {DASH} = not published or not measured.", "",
           "## Do ours and the published numbers order the streams the same way?", ""]
    body = []
    for metric in PUBLISHED_METRICS:
        mine = [r for r in rows if r["metric"] == metric]
        pub, ours = [r["published"] for r in mine], [r["ours"] for r in mine]
        same = same_ranking(pub, ours)
        body.append([labels[metric], str(len(_paired(pub, ours)[0])), _rho(spearman(pub, ours)),
                     "n/a" if same is None else "yes" if same else "no"])
    out += [_md_table(["Metric", "Streams with both", "Spearman ρ(published, ours)", "Same order (ties included)"],
                      body), ""]
    for metric in PUBLISHED_METRICS:
        out += [f"## {labels[metric]}", "",
                _md_table(["Paper row", "Stream", "Published", "Ours", "Ours − published"],
                          [[r["paper_row"], r["stream"], _fmt(r["published"], ".2f"), _fmt(r["ours"], ".2f"),
                            _fmt(r["difference"], "+.2f")] for r in rows if r["metric"] == metric]), ""]
    return "\n".join(out)


# --- figures ----------------------------------------------------------------------------

def _palette(names: list[str]) -> dict[str, tuple]:
    cmap = plt.get_cmap("tab10" if len(names) <= 10 else "tab20")
    return {n: cmap(i % cmap.N) for i, n in enumerate(names)}


def _markers(objectives: list[str]) -> dict[str, str]:
    shapes = "osD^vP*X"
    return {o: shapes[i % len(shapes)] for i, o in enumerate(objectives)}


def _panels(n: int, nrows: int = 1, w: float = 5.5, h: float = 4.2):
    n, nrows = max(n, 1), max(nrows, 1)  # an empty report still gets a (blank) figure
    fig, axes = plt.subplots(nrows, n, figsize=(w * n, h * nrows), squeeze=False)
    return fig, axes


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=DPI, bbox_inches="tight")
    plt.close(fig)
    return path


def _utility_scatter(path: Path, xkey: str, xlabel: str, title: str, stream_rows, run_rows, base_rows,
                     defaults, colors, markers) -> Path:
    util = utility(run_rows, defaults)
    objectives = [o for o in _objectives(run_rows) if any(key[2] == o for key in util)] or list(OBJECTIVES)
    students = _students(stream_rows, run_rows, base_rows)
    k = _k_label([*run_rows, *base_rows])
    fig, axes = _panels(len(students))
    for ax, student in zip(axes[0], students):
        rows = _student_streams(student, stream_rows, run_rows)
        for s in rows:
            x = s[xkey]
            xerr = (s["reward_ci95_high"] - s["reward_ci95_low"]) / 2 if xkey == "reward_mean" else math.nan
            label_at = None
            for o in objectives:
                u = util.get((student, s["stream"], o))
                if u is None or not math.isfinite(x):
                    continue
                y = 100 * u["avg_at_k"]
                yerr = [[y - 100 * u["lo"]], [100 * u["hi"] - y]]  # seed range
                ax.errorbar(x, y, yerr=yerr, xerr=xerr if math.isfinite(xerr) else None, fmt=markers[o],
                            color=colors[s["stream"]], ms=8, capsize=3, elinewidth=1)
                if label_at is None or y > label_at[1]:
                    label_at = (x, y)
            if label_at:
                ax.annotate(s["stream"], label_at, textcoords="offset points", xytext=(6, 6), fontsize=8,
                            color=colors[s["stream"]])
        for b in (b for b in base_rows if b["student"] == student and math.isfinite(b["avg_at_k"])):
            ax.axhline(100 * b["avg_at_k"], ls="--", color="gray", lw=1)
        xs = [s[xkey] for s in rows]
        rhos = ", ".join(f"{o.upper()} {_rho(spearman(xs, _utility_of(util, student, rows, o)))}"
                         for o in objectives)
        ax.set_title(f"{student}\nSpearman ρ: {rhos}", fontsize=10)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(f"{k} (%)")
        ax.grid(alpha=0.3)
        handles = [Line2D([], [], marker=markers[o], ls="", color="black", label=o.upper()) for o in objectives]
        handles.append(Line2D([], [], ls="--", color="gray", label="base student"))
        ax.legend(handles=handles, fontsize=8, loc="best")
    fig.suptitle(f"{title} ({_setting(defaults)}; bars: seed range)")
    return _save(fig, path)


def _segmented_ppl(path: Path, stream_rows, run_rows, base_rows, colors) -> Path:
    students = _ordered(s["student"] for s in stream_rows) or _students(stream_rows, run_rows, base_rows)
    fig, axes = _panels(len(students))
    for ax, student in zip(axes[0], students):
        for s in _by_asc([s for s in stream_rows if s["student"] == student], "ppl"):
            ax.plot(range(1, len(QUARTERS) + 1), [s[q] for q in QUARTERS], marker="o",
                    color=colors[s["stream"]], label=f"{s['stream']} (PPL {_fmt(s['ppl'], '.2f')})")
        ax.set_xticks(range(1, len(QUARTERS) + 1), [f"Q{i}" for i in range(1, len(QUARTERS) + 1)])
        ax.set_xlabel("quarter of the trace (by token position)")
        ax.set_ylabel("student perplexity")
        ax.set_title(student, fontsize=10)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle("Adaptation cost along the trace")
    return _save(fig, path)


def _retention(path: Path, stream_rows, colors) -> Path:
    """Semantic retention of each rewritten stream: the judge's 1-5 score and edit similarity."""
    rows = [s for s in stream_rows if s.get("retention")]
    students = _ordered(s["student"] for s in rows) or ["(no oracle streams)"]
    fig, axes = _panels(len(students))
    for ax, student in zip(axes[0], students):
        for s in (s for s in rows if s["student"] == student):
            r = s["retention"]
            judge, sim = r["judge_score"], r["edit_similarity"]
            ax.errorbar(sim["mean"], judge["mean"], fmt="o", color=colors[s["stream"]], label=s["stream"],
                        xerr=[[sim["mean"] - sim["ci95_low"]], [sim["ci95_high"] - sim["mean"]]]
                        if math.isfinite(sim["ci95_low"]) else None,
                        yerr=[[judge["mean"] - judge["ci95_low"]], [judge["ci95_high"] - judge["mean"]]]
                        if math.isfinite(judge["ci95_low"]) else None)
        ax.set_xlabel("edit similarity to the student's source trace")
        ax.set_ylabel("judge: semantic retention (1-5)")
        ax.set_xlim(0, 1.02)
        ax.set_ylim(0.8, 5.2)
        ax.set_title(student, fontsize=10)
        ax.grid(alpha=0.3)
        if any(s["student"] == student for s in rows):
            ax.legend(fontsize=8)
    fig.suptitle("Semantic retention of the rewritten streams (mean ± 95% CI)")
    return _save(fig, path)


def _read_curve(path) -> pl.DataFrame:
    df = pl.read_csv(path, schema_overrides={"step": pl.Float64, "loss": pl.Float64, "lr": pl.Float64})
    return df.select("step", "loss").filter(pl.col("loss").is_finite())


def _training_curves(path: Path, run_rows, defaults, colors) -> Path:
    runs = _at_defaults(run_rows, defaults)
    students = _ordered(r["student"] for r in runs) or ["(no runs)"]
    objectives = [o for o in _objectives(runs) if any(r["objective"] == o for r in runs)] or list(OBJECTIVES)
    fig, axes = _panels(len(objectives), nrows=len(students))
    for i, student in enumerate(students):
        for j, o in enumerate(objectives):
            ax = axes[i][j]
            for stream in _ordered(r["stream"] for r in runs if r["student"] == student):
                seeds = [r for r in runs if (r["student"], r["stream"], r["objective"]) == (student, stream, o)]
                curves = [_read_curve(r["curve"]) for r in seeds]
                for c in curves:
                    ax.plot(c["step"], c["loss"], color=colors[stream], lw=0.7, alpha=0.6)
                if curves:
                    # the mean over seeds, on the steps every seed logged
                    mean = (pl.concat(curves).group_by("step").agg(pl.col("loss").mean(), pl.len().alias("n"))
                            .filter(pl.col("n") == len(curves)).sort("step"))
                    ax.plot(mean["step"], mean["loss"], color=colors[stream], lw=2,
                            label=f"{stream} ({len(curves)} seeds)")
            ax.set_title(f"{student} — {o.upper()}", fontsize=10)
            ax.set_xlabel("step")
            ax.set_ylabel("training loss")
            ax.grid(alpha=0.3)
            if ax.get_legend_handles_labels()[0]:
                ax.legend(fontsize=8)
            else:
                ax.text(0.5, 0.5, "no runs", ha="center", va="center", transform=ax.transAxes, color="gray")
    fig.suptitle(f"Training curves ({_setting(defaults)}; thin: seeds, thick: mean)")
    return _save(fig, path)


def plot_figures(stream_rows: list[dict], run_rows: list[dict], base_rows: list[dict], defaults: dict,
                 out_dir, primary_reward: str = "reward") -> list[Path]:
    """Write the figures into ``out_dir``; one panel per student, one color per stream."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    colors = _palette(_ordered([*(s["stream"] for s in stream_rows), *(r["stream"] for r in run_rows)]))
    markers = _markers(_objectives(run_rows))
    common = (stream_rows, run_rows, base_rows, defaults, colors, markers)
    return [
        _utility_scatter(out / "reward_vs_utility.png", "reward_mean", f"reward ({primary_reward}), mean ± 95% CI",
                         "Perceived quality vs utility", *common),
        _utility_scatter(out / "ppl_vs_utility.png", "ppl", "student perplexity on the stream (adaptation cost)",
                         "Adaptation cost vs utility", *common),
        _segmented_ppl(out / "segmented_ppl.png", stream_rows, run_rows, base_rows, colors),
        _training_curves(out / "training_curves.png", run_rows, defaults, colors),
        _retention(out / "retention.png", stream_rows, colors),
    ]


# --- entry points -----------------------------------------------------------------------

def build_report(streams: list[dict], runs: list[dict], base: list[dict], primary_reward: str,
                 table_defaults: dict, streams_csv, table1, mechanism, figures, published: dict | None = None,
                 published_comparison_md=None) -> None:
    """Read every input once and write all report outputs (the published comparison only when
    ``published`` is given)."""
    stream_rows = collect_streams(streams, primary_reward)
    run_rows = collect_runs(runs)
    base_rows = collect_base(base)
    defaults = {"lr": float(table_defaults["lr"]), "batch_size": int(table_defaults["batch_size"]),
                "epochs": float(table_defaults["epochs"])}
    if run_rows and not _at_defaults(run_rows, defaults):
        print(f"warning: no run at the Table 1 setting {_setting(defaults)}")
    for path in (streams_csv, table1, mechanism):
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    streams_frame(stream_rows, run_rows, base_rows).write_csv(streams_csv)
    Path(table1).write_text(table1_markdown(stream_rows, run_rows, base_rows, defaults, primary_reward),
                            encoding="utf-8")
    Path(mechanism).write_text(mechanism_markdown(stream_rows, run_rows, base_rows, defaults), encoding="utf-8")
    if published is not None:
        Path(published_comparison_md).write_text(
            published_markdown(published, stream_rows, run_rows, base_rows, defaults, primary_reward),
            encoding="utf-8")
    for p in plot_figures(stream_rows, run_rows, base_rows, defaults, figures, primary_reward):
        print(f"wrote {p}")


def main(snakemake) -> None:
    with logged(snakemake.log[0], snakemake.threads):
        p, o = snakemake.params, snakemake.output
        build_report(p.streams, p.runs, p.base, p.primary_reward, p.table_defaults,
                     o.streams_csv, o.table1, o.mechanism, o.figures, p.published,
                     dict(o.items()).get("published_comparison"))


if __name__ == "__main__":
    main(snakemake)  # noqa: F821 -- injected by Snakemake's script directive
