"""The paper's tables, from the collected stage outputs (``scripts.analysis.collect``).

- ``streams.csv``: one row per training run (student, stream, objective, lr, batch size,
  seed) with the stream's perceived quality (reward), adaptation cost (student PPL, global
  and per quarter Q1..Q4) and the run's utility (Avg@k, overall and per benchmark); plus one
  ``base`` row per student for the untrained student. Accuracies are fractions in [0, 1].
- ``table1.md``: the paper's Table 1 -- streams by reward, SFT and DFT utility at the
  paper's setting, and whether the reward ranking is the exact reverse of the utility ranking.
- ``mechanism.md``: streams by adaptation cost, and how PPL tracks utility; the oracle
  streams' requests, cost, rejections and retention; the share of evaluation samples whose
  answer the grader could not extract, per stream and benchmark.
- ``published_comparison.md`` (only when ``report.published`` is set, as configs/paper.yaml
  does): the published numbers next to ours for the student they refer to, the differences,
  and whether both order the streams the same way.
- ``utility_breakdown.md``: Avg@k per group of each metadata field a benchmark carries
  (MATH-500 by level and by subject), base student and every stream x objective.
- ``decontamination.md``: the pool problems removed as matches of benchmark problems, counted
  per benchmark and listed.
"""

import itertools
import math

import numpy as np
import polars as pl

from scripts.analysis.collect import (
    BASE,
    OBJECTIVES,
    QUARTERS,
    at_defaults,
    k_label,
    objectives,
    ordered,
    setting_label,
    student_streams,
    students,
    utility,
    utility_of,
)
from scripts.analysis.formatting import DASH, fmt, markdown_table, p_value, rho
from scripts.analysis.statistics import exact_reverse, paired, same_ranking, spearman, spearman_test
from scripts.infrastructure.records import read_json, write_text
from scripts.infrastructure.stage_log import StageError


def _number(v) -> float:
    return math.nan if v is None else float(v)


def _utility_cell(u: float | None, base: float) -> str:
    """Utility in %, with ↓ where it is below the untrained student's."""
    return fmt(u, ".2f", 100) + (" ↓" if u is not None and math.isfinite(base) and u < base else "")


def _reward_cell(s: dict) -> str:
    half = (s["reward_ci95_high"] - s["reward_ci95_low"]) / 2
    if not math.isfinite(s["reward_mean"]):
        return DASH
    return fmt(s["reward_mean"]) + ("" if not math.isfinite(half) else f" ± {half:.3f}")


def _by_desc(rows: list[dict], key: str) -> list[dict]:
    # NaN sorts last; ties keep the config's order.
    return sorted(rows, key=lambda s: (not math.isfinite(s[key]), -s[key] if math.isfinite(s[key]) else 0))


def _by_asc(rows: list[dict], key: str) -> list[dict]:
    return sorted(rows, key=lambda s: (not math.isfinite(s[key]), s[key] if math.isfinite(s[key]) else 0))


def _across(n: int) -> str:
    return f"across {n} stream{'' if n == 1 else 's'}"


def streams_frame(stream_rows: list[dict], run_rows: list[dict], base_rows: list[dict]) -> pl.DataFrame:
    """The long table behind every other output: one row per run, one base row per student,
    and one row (no run columns) for a stream that has no runs."""
    benches = sorted({b for r in [*run_rows, *base_rows] for b in r["benchmarks"]})
    schema = {
        "student": pl.String,
        "stream": pl.String,
        "objective": pl.String,
        "lr": pl.Float64,
        "batch_size": pl.Int64,
        "epochs": pl.Float64,
        "seed": pl.Int64,
        "n_examples": pl.Int64,
        "reward_mean": pl.Float64,
        "reward_ci95_low": pl.Float64,
        "reward_ci95_high": pl.Float64,
        "ppl": pl.Float64,
        **{q: pl.Float64 for q in QUARTERS},
        "final_loss": pl.Float64,
        "avg_at_k": pl.Float64,
        **{f"avg_at_k_{b}": pl.Float64 for b in benches},
        "rejected": pl.Int64,
    }
    stream_cols = ["reward_mean", "reward_ci95_low", "reward_ci95_high", "ppl", *QUARTERS, "rejected"]
    rows = []
    for student in students(stream_rows, run_rows, base_rows):
        for b in (b for b in base_rows if b["student"] == student):
            rows.append(
                {
                    "student": student,
                    "stream": BASE,
                    "avg_at_k": b["avg_at_k"],
                    **{f"avg_at_k_{k}": v for k, v in b["benchmarks"].items()},
                }
            )
        for s in student_streams(student, stream_rows, run_rows):
            mine = sorted(
                (r for r in run_rows if r["student"] == student and r["stream"] == s["stream"]),
                key=lambda r: (r["objective"], r["lr"], r["batch_size"], r["epochs"], r["seed"]),
            )
            info = {c: s[c] for c in stream_cols}
            if not mine:
                rows.append({"student": student, "stream": s["stream"], **info})
            for r in mine:
                rows.append(
                    {
                        **{
                            c: r[c]
                            for c in (
                                "student",
                                "stream",
                                "objective",
                                "lr",
                                "batch_size",
                                "epochs",
                                "seed",
                                "n_examples",
                                "final_loss",
                                "avg_at_k",
                            )
                        },
                        **info,
                        **{f"avg_at_k_{k}": v for k, v in r["benchmarks"].items()},
                    }
                )
    df = pl.DataFrame([{c: row.get(c) for c in schema} for row in rows], schema=schema, orient="row")
    # NaN and null both mean "not measured"; one spelling keeps the CSV easy to read back.
    return df.with_columns(pl.col(pl.Float64).fill_nan(None))


# --- table1.md and mechanism.md ---------------------------------------------------------


def table1_markdown(
    stream_rows: list[dict],
    run_rows: list[dict],
    base_rows: list[dict],
    defaults: dict,
    primary_reward: str,
    construction: dict | None = None,
    alpha: float = 0.05,
) -> str:
    """Table 1 per student: streams by reward (descending) against SFT/DFT utility; the rank
    correlation with its exact permutation p-value; what holds by construction; and the streams
    that train the student below its untrained base, flagged in the table (↓)."""
    why = ((construction or {}).get("C1") or {}).get(primary_reward)
    util = utility(run_rows, defaults)
    objs = objectives(run_rows)
    k = k_label([*run_rows, *base_rows])
    out = ["# Table 1: perceived quality vs utility", ""]
    for student in students(stream_rows, run_rows, base_rows):
        rows = _by_desc(student_streams(student, stream_rows, run_rows), "reward_mean")
        header = ["Stream", f"Reward ({primary_reward})", *(f"{o.upper()} {k} (%)" for o in objs)]
        base = next((b["avg_at_k"] for b in base_rows if b["student"] == student), math.nan)

        cells = {
            (s["stream"], o): _utility_cell(util.get((student, s["stream"], o), {}).get("avg_at_k"), base)
            for s in rows
            for o in objs
        }
        body = [[s["stream"], _reward_cell(s), *(cells[s["stream"], o] for o in objs)] for s in rows]
        out += [f"## {student}", "", markdown_table(header, body), ""]
        if math.isfinite(base):
            below = sorted(
                {f"{s['stream']} ({o.upper()})" for s in rows for o in objs if cells[s["stream"], o].endswith("↓")}
            )
            out.append(
                f"Base student (no fine-tuning): {k} = {fmt(base, '.2f', 100)}%. "
                + (
                    f"↓ = below it, the fine-tuning made the student worse: {', '.join(below)}."
                    if below
                    else "Every stream trains the student above it."
                )
            )
        if why:
            out.append(
                f"**Reward {primary_reward} holds the oracle streams above SLM-RFT by construction, not as "
                f"evidence:** {why}."
            )
        seeds = sorted({v["seeds"] for (st, _, _), v in util.items() if st == student})
        n = DASH if not seeds else str(seeds[0]) if len(seeds) == 1 else f"{seeds[0]}–{seeds[-1]}"
        out.append(
            f"Reward: mean ± 95% CI half-width of {primary_reward} over the stream's traces. "
            f"{k}: mean of {n} seeds at {setting_label(defaults)}; "
            f"{DASH} = no run."
        )
        out.append("")
        reward = [s["reward_mean"] for s in rows]
        for o in sorted(objs, key=lambda o: o != "dft"):  # DFT is the paper's headline
            acc = utility_of(util, student, rows, o)
            t, rev = spearman_test(reward, acc, alternative="less"), exact_reverse(reward, acc)
            verdict = (
                " (fewer than two streams with both values, or no spread)"
                if rev is None
                else f"; the reward ranking {'is' if rev else 'is not'} the exact reverse of the "
                f"{o.upper()} utility ranking"
            )
            test = _permutation(t, alpha)
            out.append(f"- Spearman ρ(reward, {o.upper()} {k}) {_across(t['n'])} = {rho(t['rho'])}{test}{verdict}.")
        out.append("")
    return "\n".join(out)


def _permutation(t: dict, alpha: float, claim: str = "a negative correlation") -> str:
    """`` (exact permutation p = ...: <claim> holds / is not shown at alpha = ...)`` of a
    ``spearman_test`` record; nothing where the p-value is undefined."""
    if not math.isfinite(t["p"]):
        return ""
    kind = "exact permutation" if t["exact"] else "permutation"
    return f" ({kind} {p_value(t['p'])}: {claim} {'holds' if t['p'] < alpha else 'is not shown'} at alpha = {alpha:g})"


def mechanism_markdown(
    stream_rows: list[dict], run_rows: list[dict], base_rows: list[dict], defaults: dict, alpha: float = 0.05
) -> str:
    """Streams by adaptation cost (student PPL, ascending) against reward, the learnability probe
    and utility."""
    util = utility(run_rows, defaults)
    objs = objectives(run_rows, lead=tuple(reversed(OBJECTIVES)))
    k = k_label([*run_rows, *base_rows])
    out = ["# Mechanism: adaptation cost (student perplexity) vs utility", ""]
    for student in students(stream_rows, run_rows, base_rows):
        rows = _by_asc(student_streams(student, stream_rows, run_rows), "ppl")
        header = [
            "Stream",
            "PPL",
            "PPL Q1",
            "PPL Q2",
            "PPL Q3",
            "PPL Q4",
            "Probe (%)",
            "Reward",
            *(f"{k} {o.upper()} (%)" for o in objs),
        ]
        body = [
            [
                s["stream"],
                fmt(s["ppl"]),
                *(fmt(s[q]) for q in QUARTERS),
                fmt(s.get("result_token_accuracy"), ".1f", 100),
                fmt(s["reward_mean"]),
                *(fmt(util.get((student, s["stream"], o), {}).get("avg_at_k"), ".2f", 100) for o in objs),
            ]
            for s in rows
        ]
        out += [
            f"## {student}",
            "",
            markdown_table(header, body),
            "",
            f"{k} at {setting_label(defaults)}, mean over seeds. Probe: the untrained student's top-1 accuracy "
            "on the result tokens of the stream's equations under teacher forcing (how learnable the arithmetic "
            "is in the stream's context).",
            "",
        ]
        ppl = [s["ppl"] for s in rows]
        for o in objs:
            acc = utility_of(util, student, rows, o)
            t = spearman_test(ppl, acc, alternative="less")
            test = _permutation(t, alpha)
            out.append(f"- Spearman ρ(PPL, {o.upper()} {k}) {_across(t['n'])} = {rho(t['rho'])}{test}.")
        # The paper's claim: the drift is not confined to one part of the trace.
        holds = [same_ranking(ppl, [s[q] for s in rows]) for q in QUARTERS]
        verdict = (
            "n/a"
            if any(h is None for h in holds)
            else "yes"
            if all(holds)
            else "no (differs in " + ", ".join(f"Q{i + 1}" for i, h in enumerate(holds) if not h) + ")"
        )
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
    header = [
        "Stream",
        "Kept",
        "Rejected: no boxed answer",
        "Rejected: answer does not verify",
        "Rejected: other",
        "Requests sent",
        "Cached",
        "Failed",
        "Prompt tokens",
        "Completion tokens",
        "Est. cost (USD)",
        "Judge",
        "Judged",
        "Judge retention (1–5)",
        "Edit similarity",
    ]
    body = []
    for s in rows:
        u, r = s.get("oracle_usage") or {}, s.get("retention") or {}
        judge, sim = r.get("judge_score") or {}, r.get("edit_similarity") or {}
        body.append(
            [
                s["stream"],
                str(s.get("kept") or 0),
                *map(str, _reason_counts(s["rejected_reasons"])),
                *(
                    str(u.get(key, DASH))
                    for key in ("requests_sent", "cached", "failed", "prompt_tokens", "completion_tokens")
                ),
                fmt(u.get("estimated_cost"), ".2f") if u else DASH,
                r.get("judge", DASH),
                str(r.get("judged", DASH)),
                fmt(judge.get("mean"), ".2f"),
                fmt(sim.get("mean"), ".3f"),
            ]
        )
    return [
        "### Oracle streams: requests, cost, rejections, retention",
        "",
        markdown_table(header, body),
        "",
        "Requests and tokens count every request of the stream's job (cached answers cost nothing again); "
        "the built-in oracle sends none. Retention: the judge's score (1–5, formatting ignored; retention.judge, "
        "else the stream's own oracle) of the judged rewrites (retention.sample, else all), and difflib edit "
        "similarity of every rewrite to the student's source trace.",
        "",
    ]


# --- published_comparison.md ------------------------------------------------------------

# The published metrics: the keys of report.published.streams.<stream>, in the paper's units.
PUBLISHED_METRICS = ("reward", "sft", "dft", "ppl", "retention")


def _our_value(metric: str, s: dict, util: dict) -> float:
    """Our value of a published metric for one stream record (utility in %, as published)."""
    if metric in OBJECTIVES:
        return 100 * util.get((s["student"], s["stream"], metric), {}).get("avg_at_k", math.nan)
    if metric == "retention":
        return _number(((s.get("retention") or {}).get("judge_score") or {}).get("mean"))
    return s[{"reward": "reward_mean", "ppl": "ppl"}[metric]]


def published_comparison(published: dict, stream_rows: list[dict], run_rows: list[dict], defaults: dict) -> list[dict]:
    """One record per (metric, published row): the published value, ours and ours - published
    (NaN where either is missing), for the student the published numbers refer to."""
    student = published["student"]
    ours = {s["stream"]: s for s in student_streams(student, stream_rows, run_rows)}
    if not ours:
        raise StageError(
            f"report.published.student: {student!r} has no streams in this run "
            f"(students: {ordered(s['student'] for s in stream_rows)})"
        )
    util = utility(run_rows, defaults)
    rows = []
    for metric in PUBLISHED_METRICS:
        for stream, pub in published["streams"].items():
            p = _number(pub.get(metric))
            o = _our_value(metric, ours[stream], util) if stream in ours else math.nan
            rows.append(
                {
                    "metric": metric,
                    "paper_row": pub["paper_row"],
                    "stream": stream,
                    "published": p,
                    "ours": o,
                    "difference": o - p,
                }
            )
    return rows


def published_markdown(
    published: dict,
    stream_rows: list[dict],
    run_rows: list[dict],
    base_rows: list[dict],
    defaults: dict,
    primary_reward: str,
) -> str:
    """The published numbers next to ours, per metric, and whether both rank the streams alike."""
    rows = published_comparison(published, stream_rows, run_rows, defaults)
    k = k_label([*run_rows, *base_rows])
    labels = {
        "reward": f"Reward (ours: {primary_reward})",
        "sft": f"SFT utility ({k} here, %)",
        "dft": f"DFT utility ({k} here, %)",
        "ppl": "Global PPL of the student",
        "retention": "Semantic retention (judge, 1–5)",
    }
    out = [
        "# Against the published numbers",
        "",
        f"Published: {published['source']}. Ours: student {published['student']}; reward = mean "
        f"{primary_reward} over the stream's traces; utility = {k} at {setting_label(defaults)}, mean over seeds; "
        f"PPL = the student's global perplexity on the stream; retention = the judge's 1–5 score of a rewrite "
        f"against its source trace. A difference means something only where the setting matches the paper's "
        f"(same reward model, benchmarks, k, training setting); the rankings compare the order of the streams "
        f"whatever the scale. {DASH} = not published or not measured.",
        "",
        "## Do ours and the published numbers order the streams the same way?",
        "",
    ]
    body = []
    for metric in PUBLISHED_METRICS:
        mine = [r for r in rows if r["metric"] == metric]
        pub, ours = [r["published"] for r in mine], [r["ours"] for r in mine]
        same = same_ranking(pub, ours)
        body.append(
            [
                labels[metric],
                str(len(paired(pub, ours)[0])),
                rho(spearman(pub, ours)),
                "n/a" if same is None else "yes" if same else "no",
            ]
        )
    out += [
        markdown_table(
            ["Metric", "Streams with both", "Spearman ρ(published, ours)", "Same order (ties included)"], body
        ),
        "",
    ]
    for metric in PUBLISHED_METRICS:
        out += [
            f"## {labels[metric]}",
            "",
            markdown_table(
                ["Paper row", "Stream", "Published", "Ours", "Ours − published"],
                [
                    [
                        r["paper_row"],
                        r["stream"],
                        fmt(r["published"], ".2f"),
                        fmt(r["ours"], ".2f"),
                        fmt(r["difference"], "+.2f"),
                    ]
                    for r in rows
                    if r["metric"] == metric
                ],
            ),
            "",
        ]
    return "\n".join(out)


def rewards_markdown(streams: list[dict]) -> str:
    """Every reward model's mean score per stream, its ranking of the streams, and where two
    reward models disagree: Spearman's rho between their stream means, and the streams they
    order differently (``streams``: the report's stream records, with every reward's summary)."""
    names = ordered(r for s in streams for r in s["reward"])
    if len(names) < 2:
        return ""
    out = ["## Reward models compared", ""]
    for student in ordered(s["student"] for s in streams):
        mine = [s for s in streams if s["student"] == student]
        means = {r: [_number(read_json(s["reward"][r]).get("mean")) for s in mine] for r in names}
        ranks = {
            r: {s["stream"]: i + 1 for i, s in enumerate(sorted(mine, key=lambda s, r=r: -means[r][mine.index(s)]))}
            for r in names
        }
        body = [
            [s["stream"], *(f"{fmt(means[r][i])} (#{ranks[r][s['stream']]})" for r in names)]
            for i, s in enumerate(mine)
        ]
        out += [f"### {student}", "", markdown_table(["Stream", *(f"{r}: mean (rank)" for r in names)], body), ""]
        for a, b in itertools.combinations(names, 2):
            swapped = [s["stream"] for s in mine if ranks[a][s["stream"]] != ranks[b][s["stream"]]]
            out.append(
                f"- {a} vs {b}: Spearman ρ of the stream means = {rho(spearman(means[a], means[b]))}; "
                + (f"they rank differently: {', '.join(swapped)}." if swapped else "the same ranking.")
            )
        out.append("")
    return "\n".join(out)


def write_tables(
    stream_rows: list[dict],
    run_rows: list[dict],
    base_rows: list[dict],
    defaults: dict,
    primary_reward: str,
    streams_csv,
    table1,
    mechanism,
    published: dict | None = None,
    published_comparison_md=None,
    construction: dict | None = None,
    alpha: float = 0.05,
    streams: list[dict] | None = None,
) -> None:
    """Write streams.csv, table1.md (with every reward model compared when there are several),
    mechanism.md and (with ``published``) the comparison."""
    frame = streams_frame(stream_rows, run_rows, base_rows)
    write_text(streams_csv, frame.write_csv())
    compared = rewards_markdown(streams or [])
    write_text(
        table1,
        table1_markdown(stream_rows, run_rows, base_rows, defaults, primary_reward, construction, alpha)
        + ("\n" + compared if compared else ""),
    )
    write_text(
        mechanism,
        mechanism_markdown(stream_rows, run_rows, base_rows, defaults, alpha)
        + "\n"
        + unextracted_markdown(run_rows, base_rows, defaults),
    )
    if published is not None:
        write_text(
            published_comparison_md,
            published_markdown(published, stream_rows, run_rows, base_rows, defaults, primary_reward),
        )


# --- mechanism.md: answers the grader could not extract ---------------------------------


def _unextracted_cell(rows: list[dict], bench: str) -> str:
    v = [r["unextracted"][bench] for r in rows if (r.get("unextracted") or {}).get(bench) is not None]
    return fmt(float(np.mean(v)) if v else None, ".1f", 100)


def unextracted_markdown(run_rows: list[dict], base_rows: list[dict], defaults: dict) -> str:
    """Per student, the share (%) of evaluation samples with no answer to extract (no \\boxed{}
    under boxed-only extraction, nothing under a fallback), by stream x objective (Table 1's
    setting, mean over seeds) and benchmark: a student that answers in another form scores 0
    by a grader that cannot read it."""
    out = ["## Answers the grader could not extract", ""]
    runs = at_defaults(run_rows, defaults)
    for student in students([], run_rows, base_rows):
        base = [b for b in base_rows if b["student"] == student]
        mine = [r for r in runs if r["student"] == student]
        benches = ordered(b for r in [*base, *mine] for b in (r.get("unextracted") or {}))
        if not benches:
            continue
        body = [[BASE, DASH, *(_unextracted_cell(base, b) for b in benches)]] if base else []
        for stream in ordered(r["stream"] for r in mine):
            for o in objectives(mine):
                rows = [r for r in mine if r["stream"] == stream and r["objective"] == o]
                if rows:
                    body.append([stream, o.upper(), *(_unextracted_cell(rows, b) for b in benches)])
        header = ["Stream", "Objective", *(f"{b} (%)" for b in benches)]
        out += [f"### {student}", "", markdown_table(header, body), ""]
    out += [f"Samples at {setting_label(defaults)}, mean over seeds; the base student is untrained.", ""]
    return "\n".join(out)


# --- utility_breakdown.md ---------------------------------------------------------------


def _groups(row: dict, bench: str, field: str) -> dict:
    return ((row.get("breakdown") or {}).get(bench) or {}).get(field) or {}


def _group_cell(rows: list[dict], bench: str, field: str, group: str) -> str:
    v = [_groups(r, bench, field)[group]["avg_at_k"] for r in rows if group in _groups(r, bench, field)]
    return fmt(float(np.mean(v)) if v else None, ".2f", 100)


def utility_breakdown_markdown(run_rows: list[dict], base_rows: list[dict], defaults: dict) -> str:
    """Avg@k per group of each metadata field a benchmark's problems carry (MATH-500: level and
    subject), for the untrained student and every stream x objective at the Table 1 setting."""
    k = k_label([*run_rows, *base_rows])
    out = [
        f"# Utility by the benchmarks' own metadata: {k} per group",
        "",
        f"A benchmark whose problems carry metadata (MATH-500: level, subject) is broken down by each field "
        f"that splits it into groups. Cells: {k} (%) over the group's problems; streams at "
        f"{setting_label(defaults)}, mean over seeds; {DASH} = no run.",
        "",
    ]
    found = False
    for student in ordered(r["student"] for r in [*base_rows, *run_rows]):
        base = [b for b in base_rows if b["student"] == student]
        runs = [r for r in at_defaults(run_rows, defaults) if r["student"] == student]
        columns = ordered((r["stream"], r["objective"]) for r in runs)
        rows = [*base, *runs]
        for bench in ordered(b for r in rows for b in r.get("breakdown") or {}):
            for field in ordered(f for r in rows for f in (r.get("breakdown") or {}).get(bench, {})):
                groups = next(_groups(r, bench, field) for r in rows if _groups(r, bench, field))
                body = [
                    [
                        group,
                        str(groups[group]["problems"]),
                        _group_cell(base, bench, field, group),
                        *(
                            _group_cell([r for r in runs if (r["stream"], r["objective"]) == c], bench, field, group)
                            for c in columns
                        ),
                    ]
                    for group in groups
                ]
                header = [field, "Problems", "Base", *(f"{s} {o.upper()}" for s, o in columns)]
                out += [f"## {student}: {bench} by {field}", "", markdown_table(header, body), ""]
                found = True
    if not found:
        out.append(
            "No benchmark's problems carry metadata that splits them into groups (the organism's generated "
            "benchmarks carry none): a file or dataset with columns such as MATH-500's level and subject "
            "(problems.benchmarks.<name>.columns.metadata) gets a table per field here."
        )
    return "\n".join(out) + "\n"


# --- decontamination.md -----------------------------------------------------------------


def decontamination_markdown(report: dict) -> str:
    """The pool checked against the benchmarks: removals counted per benchmark, then listed."""
    out = ["# Decontamination: the training pool against the benchmarks", ""]
    planted = set(report.get("planted") or [])
    if not report.get("enabled"):
        return "\n".join(out + ["Not run (problems.decontamination.enabled is false).", ""])
    removed = report["removed"]
    out += [
        f"Before any native trace was sampled, each of the {report['pool_before']} pool problems"
        f"{f' ({len(planted)} of them planted copies of benchmark problems)' if planted else ''} was checked "
        f"against every benchmark problem: equal after normalisation (NFKC, lower case, punctuation as spaces), "
        f"or sharing at least {report['threshold']:g} of the shorter problem's word {report['ngram']}-grams. "
        f"{len(removed)} were removed ({sum(r['pool_id'] in planted for r in removed)} of the "
        f"{len(planted)} planted); {report['pool_after']} remain. Each removal counts under the benchmark "
        f"problem it matches best.",
        "",
        markdown_table(
            ["Benchmark", "Benchmark problems", "Pool problems removed"],
            [[b, str(report["benchmark_problems"][b]), str(n)] for b, n in report["per_benchmark"].items()],
        ),
        "",
    ]
    if removed:
        out += [
            "## Removed pool problems",
            "",
            markdown_table(
                ["Pool problem", "Planted", "Benchmark", "Benchmark problem", "Match", "Overlap", "Problem"],
                [
                    [
                        r["pool_id"],
                        "yes" if r["pool_id"] in planted else "no",
                        r["benchmark"],
                        r["benchmark_id"],
                        r["match"],
                        f"{r['overlap']:.2f}",
                        r["problem"][:100] + ("…" if len(r["problem"]) > 100 else ""),
                    ]
                    for r in removed
                ],
            ),
            "",
        ]
    return "\n".join(out)
