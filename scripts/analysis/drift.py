"""Drift beyond perplexity: how each stream differs from what the student itself writes, read from
the adaptation-cost stage's one forward pass (``results/adaptation_cost/<student>/<stream>.*``).
One job per student over all its streams; each analysis is a table (CSV and Markdown) and a
figure (PNG) under ``results/drift/<student>/``, and ``drift.md`` holds them all, ready to include.

- **Q1 loss attribution** (``q1_loss_attribution``): which tokens carry the student's loss in the
  first quarter of the traces. Per stream, each token's share of the total Q1 NLL (summed over
  its occurrences), next to its share of the Q1 tokens; the ``top_tokens`` largest shares. The
  paper finds natural-language openers for SLM-RFT, LaTeX delimiters such as ``\\(`` for
  Oracle-Refined.
- **Token frequency shift** (``token_frequency_shift``, ``token_shift_top``): each stream's
  unigram distribution of completion tokens against the reference stream's (``slm_rft``):
  Jensen-Shannon divergence in bits (0 = same distribution, 1 = disjoint), mean completion tokens
  per trace and their ratio to the reference's (the compaction ratio: below 1, the stream says
  the same in fewer tokens), and the tokens whose relative frequency rose or fell most, in
  percentage points (the paper's "syntactic compaction": the bare backslash +3.6%).
- **Learner compatibility** (``learner_compatibility``): perplexity, the fraction of
  low-probability tokens and the Rank-Surprisal Ratio per stream (definitions in
  ``scripts.analysis.adaptation_cost``), stream-level and as per-trace means with 95% intervals.

Tokens are shown with visible whitespace: ``␣`` a space, ``↵`` a newline, ``⇥`` a tab.
"""

import math
from pathlib import Path

import numpy as np

from scripts.analysis.formatting import markdown_table
from scripts.analysis.statistics import mean_ci95
from scripts.infrastructure.records import read_json, read_jsonl


# -- loading --------------------------------------------------------------------------------------
def load_stream(summary: str, per_trace: str, tokens: str) -> dict:
    with np.load(tokens, allow_pickle=False) as z:
        data = {k: z[k] for k in z.files}
    return {"summary": read_json(summary), "per_trace": read_jsonl(per_trace), **data}


def visible(text: str) -> str:
    return text.replace(" ", "␣").replace("\n", "↵").replace("\t", "⇥")


def vocab_text(streams: dict[str, dict]) -> dict[int, str]:
    out = {}
    for s in streams.values():
        out.update(zip(s["vocab_ids"].tolist(), s["vocab_text"].tolist()))
    return out


# -- the analyses ---------------------------------------------------------------------------------
def q1_loss_attribution(streams: dict[str, dict], top: int):
    """Per stream, the tokens with the largest share of the total Q1 NLL."""
    import polars as pl

    text = vocab_text(streams)
    rows = []
    for name, s in streams.items():
        ids, nll = s["q1_token_ids"].astype(np.int64), s["q1_nll"].astype(np.float64)
        total, n = float(nll.sum()), len(ids)
        if not n:
            continue
        uniq, inverse = np.unique(ids, return_inverse=True)
        loss = np.bincount(inverse, weights=nll)
        count = np.bincount(inverse)
        order = np.lexsort((uniq, -loss))[:top]  # largest loss first, ties by token id
        for rank, j in enumerate(order, 1):
            rows.append(
                {
                    "stream": name,
                    "rank": rank,
                    "token": visible(text.get(int(uniq[j]), "?")),
                    "token_id": int(uniq[j]),
                    "count": int(count[j]),
                    "loss_share": float(loss[j] / total),
                    "token_share": float(count[j] / n),
                    "mean_nll": float(loss[j] / count[j]),
                }
            )
    schema = {
        "stream": pl.String,
        "rank": pl.Int64,
        "token": pl.String,
        "token_id": pl.Int64,
        "count": pl.Int64,
        "loss_share": pl.Float64,
        "token_share": pl.Float64,
        "mean_nll": pl.Float64,
    }
    return pl.DataFrame(rows, schema=schema)


def unigram(s: dict) -> dict[int, float]:
    total = int(s["vocab_counts"].sum())
    return {int(i): int(c) / total for i, c in zip(s["vocab_ids"], s["vocab_counts"])} if total else {}


def jensen_shannon_bits(p: dict[int, float], q: dict[int, float]) -> float:
    """JSD of two distributions over token ids, in bits (0 to 1)."""
    if not p or not q:
        return math.nan
    keys = sorted(set(p) | set(q))
    a = np.array([p.get(k, 0.0) for k in keys])
    b = np.array([q.get(k, 0.0) for k in keys])
    m = (a + b) / 2

    def kl(x):
        nz = x > 0
        return float((x[nz] * np.log2(x[nz] / m[nz])).sum())

    return max(0.0, (kl(a) + kl(b)) / 2)


def frequency_shift(streams: dict[str, dict], reference: str, top: int):
    """(per-stream summary, top over- and under-represented tokens) against ``reference``."""
    import polars as pl

    text = vocab_text(streams)
    ref = unigram(streams[reference])
    ref_len = (
        float(np.mean(streams[reference]["tokens_per_trace"]))
        if len(streams[reference]["tokens_per_trace"])
        else math.nan
    )
    summary, shifts = [], []
    for name, s in streams.items():
        p = unigram(s)
        per_trace = float(np.mean(s["tokens_per_trace"])) if len(s["tokens_per_trace"]) else math.nan
        summary.append(
            {
                "stream": name,
                "reference": reference,
                "jsd_bits": jensen_shannon_bits(p, ref),
                "tokens_per_trace": per_trace,
                "compaction_ratio": per_trace / ref_len,
                "distinct_tokens": len(p),
                "tokens": int(s["vocab_counts"].sum()),
            }
        )
        if name == reference:
            continue
        keys = sorted(set(p) | set(ref))
        delta = np.array([p.get(k, 0.0) - ref.get(k, 0.0) for k in keys])
        for direction, order in (("over", np.lexsort((keys, -delta))), ("under", np.lexsort((keys, delta)))):
            picked = [j for j in order if (delta[j] > 0 if direction == "over" else delta[j] < 0)][:top]
            for rank, j in enumerate(picked, 1):
                k = keys[j]
                shifts.append(
                    {
                        "stream": name,
                        "direction": direction,
                        "rank": rank,
                        "token": visible(text.get(k, "?")),
                        "token_id": k,
                        "freq_pct": 100 * p.get(k, 0.0),
                        "reference_freq_pct": 100 * ref.get(k, 0.0),
                        "delta_pp": 100 * float(delta[j]),
                    }
                )
    summary_schema = {
        "stream": pl.String,
        "reference": pl.String,
        "jsd_bits": pl.Float64,
        "tokens_per_trace": pl.Float64,
        "compaction_ratio": pl.Float64,
        "distinct_tokens": pl.Int64,
        "tokens": pl.Int64,
    }
    shift_schema = {
        "stream": pl.String,
        "direction": pl.String,
        "rank": pl.Int64,
        "token": pl.String,
        "token_id": pl.Int64,
        "freq_pct": pl.Float64,
        "reference_freq_pct": pl.Float64,
        "delta_pp": pl.Float64,
    }
    return pl.DataFrame(summary, schema=summary_schema), pl.DataFrame(shifts, schema=shift_schema)


def _triple(c: dict) -> tuple[float, float, float]:
    return c["mean"], c["ci95_low"], c["ci95_high"]


def learner_compatibility(streams: dict[str, dict]):
    """Per stream: PPL, low-probability token fraction and RSR, with per-trace 95% intervals."""
    import polars as pl

    rows = []
    for name, s in streams.items():
        sm, traces = s["summary"], [t for t in s["per_trace"] if t["tokens"]]
        low = _triple(mean_ci95([t["low_prob"] / t["tokens"] for t in traces]))
        rsr = _triple(mean_ci95([t["rsr"] for t in traces]))
        rows.append(
            {
                "stream": name,
                "traces": sm["traces"],
                "tokens": sm["tokens"],
                "ppl": sm["ppl"],
                "ppl_q1": sm["ppl_q1"],
                "low_prob_threshold": sm["low_prob_threshold"],
                "low_prob_fraction": sm["low_prob_fraction"],
                "low_prob_per_trace": low[0],
                "low_prob_ci95_low": low[1],
                "low_prob_ci95_high": low[2],
                "rsr": sm["rsr"],
                "rsr_per_trace": rsr[0],
                "rsr_ci95_low": rsr[1],
                "rsr_ci95_high": rsr[2],
            }
        )
    return pl.DataFrame(rows)


# -- writing --------------------------------------------------------------------------------------
def _cell(v) -> str:
    if isinstance(v, float):
        return "–" if not math.isfinite(v) else f"{v:.4g}"
    return str(v)


def markdown(df, title: str, note: str = "") -> str:
    table = markdown_table(df.columns, [[_cell(v) for v in row] for row in df.iter_rows()])
    return "\n".join([f"### {title}", "", *([note, ""] if note else []), table]) + "\n"


def _label(token: str) -> str:
    return token.replace("$", r"\$")  # no mathtext


def plot_attribution(df, streams: list[str], path: str) -> None:
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(streams), figsize=(3.2 * len(streams), 4.2), squeeze=False)
    for ax, name in zip(axes[0], streams):
        sub = df.filter(df["stream"] == name).sort("rank", descending=True)
        ax.barh([_label(t) for t in sub["token"]], sub["loss_share"], color="tab:red", label="share of Q1 loss")
        ax.barh(
            [_label(t) for t in sub["token"]],
            sub["token_share"],
            color="none",
            edgecolor="black",
            label="share of Q1 tokens",
        )
        ax.set_title(name, fontsize=9)
        ax.tick_params(labelsize=7)
    axes[0][0].legend(fontsize=7, loc="lower right")
    fig.suptitle("Q1: which tokens carry the student's loss")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_shift(summary, shifts, reference: str, path: str) -> None:
    import matplotlib.pyplot as plt

    others = [s for s in summary["stream"] if s != reference]
    fig, axes = plt.subplots(1, max(1, len(others)), figsize=(3.2 * max(1, len(others)), 4.2), squeeze=False)
    for ax, name in zip(axes[0], others):
        sub = shifts.filter(shifts["stream"] == name).sort("delta_pp")
        ax.barh(
            [_label(t) for t in sub["token"]],
            sub["delta_pp"],
            color=["tab:blue" if d < 0 else "tab:orange" for d in sub["delta_pp"]],
        )
        row = summary.filter(summary["stream"] == name).row(0, named=True)
        ax.set_title(f"{name}\nJSD {row['jsd_bits']:.3f} bits, {row['compaction_ratio']:.2f}x tokens", fontsize=8)
        ax.axvline(0, color="black", lw=0.5)
        ax.set_xlabel("frequency change (pp)", fontsize=8)
        ax.tick_params(labelsize=7)
    fig.suptitle(f"Token frequency shift against {reference}")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_compatibility(df, path: str) -> None:
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(11, 3.6))
    names = list(df["stream"])
    x = np.arange(len(names))
    panels = (
        ("ppl", None, None, "perplexity"),
        (
            "low_prob_per_trace",
            "low_prob_ci95_low",
            "low_prob_ci95_high",
            f"low-probability tokens (p < {df['low_prob_threshold'][0]:g})",
        ),
        ("rsr_per_trace", "rsr_ci95_low", "rsr_ci95_high", "Rank-Surprisal Ratio (lower: better suited)"),
    )
    for ax, (col, lo, hi, title) in zip(axes, panels):
        y = df[col].to_numpy()
        err = None if lo is None else np.nan_to_num(np.vstack([y - df[lo].to_numpy(), df[hi].to_numpy() - y]))
        ax.bar(x, y, yerr=err, color="tab:gray", capsize=3)
        ax.set_xticks(x, names, rotation=30, ha="right", fontsize=8)
        ax.set_title(title, fontsize=9)
    fig.suptitle("Learner compatibility (one forward pass of the student; per-trace means with 95% CI)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def analyse(streams: dict[str, dict], reference: str, top: int, out_dir: str) -> str:
    """Write every table and figure into ``out_dir``; returns ``drift.md``'s text."""
    import matplotlib

    matplotlib.use("Agg")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    attribution = q1_loss_attribution(streams, top)
    shift_summary, shifts = frequency_shift(streams, reference, top)
    compat = learner_compatibility(streams)
    tables = {
        "q1_loss_attribution": (
            attribution,
            "Q1 loss attribution",
            "Per stream, the tokens carrying the largest share of the student's total NLL in "
            "the first quarter of the traces (loss_share), next to their share of the Q1 "
            "tokens (token_share).",
        ),
        "token_frequency_shift": (
            shift_summary,
            f"Token frequency shift against {reference}",
            "Jensen-Shannon divergence (bits) of completion-token unigram distributions; "
            "compaction_ratio: mean completion tokens per trace over the reference's.",
        ),
        "token_shift_top": (
            shifts,
            f"Tokens over- and under-represented against {reference}",
            "Relative frequency in the stream and in the reference (%), change in percentage points.",
        ),
        "learner_compatibility": (
            compat,
            "Learner compatibility",
            "Stream-level low-probability fraction (token-weighted) and RSR (mean clipped "
            "rank over mean surprisal, across traces), and per-trace means with 95% CI.",
        ),
    }
    for stem, (df, title, note) in tables.items():
        df.write_csv(out / f"{stem}.csv")
        (out / f"{stem}.md").write_text(markdown(df, title, note), encoding="utf-8")
    plot_attribution(attribution, list(streams), str(out / "q1_loss_attribution.png"))
    plot_shift(shift_summary, shifts, reference, str(out / "token_frequency_shift.png"))
    plot_compatibility(compat, str(out / "learner_compatibility.png"))
    figures = {
        "q1_loss_attribution": "q1_loss_attribution.png",
        "token_frequency_shift": "token_frequency_shift.png",
        "learner_compatibility": "learner_compatibility.png",
    }
    parts = [
        "## Drift beyond perplexity",
        "",
        "Tokens are shown with visible whitespace: ␣ a space, ↵ a newline, ⇥ a tab.",
        "",
    ]
    for stem, (df, title, note) in tables.items():
        parts.append(markdown(df, title, note))
        if stem in figures:
            parts += [f"![{title}]({figures[stem]})", ""]
    text = "\n".join(parts)
    (out / "drift.md").write_text(text, encoding="utf-8")
    return text
