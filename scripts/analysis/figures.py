"""The paper's figures, from the collected stage outputs (``scripts.analysis.collect``): reward
vs utility, perplexity vs utility, segmented perplexity, training curves, and the semantic
retention of the rewritten streams. Each figure function returns its matplotlib Figure (what is
plotted can be read back from it); ``plot_figures`` saves them all."""

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless cluster nodes have no display

import matplotlib.pyplot as plt  # noqa: E402
import polars as pl  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402

from scripts.analysis.collect import (  # noqa: E402
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
from scripts.analysis.formatting import fmt, rho  # noqa: E402
from scripts.analysis.palette import markers as markers_of  # noqa: E402
from scripts.analysis.palette import palette  # noqa: E402
from scripts.analysis.statistics import spearman  # noqa: E402

DPI = 120


def by_ascending(rows: list[dict], key: str) -> list[dict]:
    # NaN sorts last; ties keep the config's order.
    return sorted(rows, key=lambda s: (not math.isfinite(s[key]), s[key] if math.isfinite(s[key]) else 0))


def _panels(n: int, nrows: int = 1, w: float = 5.5, h: float = 4.2):
    n, nrows = max(n, 1), max(nrows, 1)  # an empty report still gets a (blank) figure
    fig, axes = plt.subplots(nrows, n, figsize=(w * n, h * nrows), squeeze=False)
    return fig, axes


def save(fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=DPI, bbox_inches="tight")
    plt.close(fig)
    return path


def utility_scatter(xkey: str, xlabel: str, title: str, stream_rows, run_rows, base_rows, defaults, colors, markers):
    """Utility (y, one marker per objective, bars: seed range) against a stream measure (x)."""
    util = utility(run_rows, defaults)
    objs = [o for o in objectives(run_rows) if any(key[2] == o for key in util)] or list(OBJECTIVES)
    names = students(stream_rows, run_rows, base_rows)
    k = k_label([*run_rows, *base_rows])
    fig, axes = _panels(len(names))
    for ax, student in zip(axes[0], names):
        rows = student_streams(student, stream_rows, run_rows)
        for s in rows:
            x = s[xkey]
            xerr = (s["reward_ci95_high"] - s["reward_ci95_low"]) / 2 if xkey == "reward_mean" else math.nan
            label_at = None
            for o in objs:
                u = util.get((student, s["stream"], o))
                if u is None or not math.isfinite(x):
                    continue
                y = 100 * u["avg_at_k"]
                yerr = [[y - 100 * u["lo"]], [100 * u["hi"] - y]]  # seed range
                ax.errorbar(
                    x,
                    y,
                    yerr=yerr,
                    xerr=xerr if math.isfinite(xerr) else None,
                    fmt=markers[o],
                    color=colors[s["stream"]],
                    ms=8,
                    capsize=3,
                    elinewidth=1,
                )
                if label_at is None or y > label_at[1]:
                    label_at = (x, y)
            if label_at:
                ax.annotate(
                    s["stream"],
                    label_at,
                    textcoords="offset points",
                    xytext=(6, 6),
                    fontsize=8,
                    color=colors[s["stream"]],
                )
        for b in (b for b in base_rows if b["student"] == student and math.isfinite(b["avg_at_k"])):
            ax.axhline(100 * b["avg_at_k"], ls="--", color="gray", lw=1)
        xs = [s[xkey] for s in rows]
        rhos = ", ".join(f"{o.upper()} {rho(spearman(xs, utility_of(util, student, rows, o)))}" for o in objs)
        ax.set_title(f"{student}\nSpearman ρ: {rhos}", fontsize=10)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(f"{k} (%)")
        ax.grid(alpha=0.3)
        handles = [Line2D([], [], marker=markers[o], ls="", color="black", label=o.upper()) for o in objs]
        handles.append(Line2D([], [], ls="--", color="gray", label="base student"))
        ax.legend(handles=handles, fontsize=8, loc="best")
    fig.suptitle(f"{title} ({setting_label(defaults)}; bars: seed range)")
    return fig


def segmented_ppl(stream_rows, run_rows, base_rows, colors):
    """The student's perplexity per quarter of the trace, one line per stream."""
    names = ordered(s["student"] for s in stream_rows) or students(stream_rows, run_rows, base_rows)
    fig, axes = _panels(len(names))
    for ax, student in zip(axes[0], names):
        for s in by_ascending([s for s in stream_rows if s["student"] == student], "ppl"):
            ax.plot(
                range(1, len(QUARTERS) + 1),
                [s[q] for q in QUARTERS],
                marker="o",
                color=colors[s["stream"]],
                label=f"{s['stream']} (PPL {fmt(s['ppl'], '.2f')})",
            )
        ax.set_xticks(range(1, len(QUARTERS) + 1), [f"Q{i}" for i in range(1, len(QUARTERS) + 1)])
        ax.set_xlabel("quarter of the trace (by token position)")
        ax.set_ylabel("student perplexity")
        ax.set_title(student, fontsize=10)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle("Adaptation cost along the trace")
    return fig


def retention(stream_rows, colors):
    """Semantic retention of each rewritten stream: the judge's 1-5 score and edit similarity."""
    rows = [s for s in stream_rows if s.get("retention")]
    names = ordered(s["student"] for s in rows) or ["(no oracle streams)"]
    fig, axes = _panels(len(names))
    for ax, student in zip(axes[0], names):
        for s in (s for s in rows if s["student"] == student):
            r = s["retention"]
            judge, sim = r["judge_score"], r["edit_similarity"]
            ax.errorbar(
                sim["mean"],
                judge["mean"],
                fmt="o",
                color=colors[s["stream"]],
                label=s["stream"],
                xerr=[[sim["mean"] - sim["ci95_low"]], [sim["ci95_high"] - sim["mean"]]]
                if math.isfinite(sim["ci95_low"])
                else None,
                yerr=[[judge["mean"] - judge["ci95_low"]], [judge["ci95_high"] - judge["mean"]]]
                if math.isfinite(judge["ci95_low"])
                else None,
            )
        ax.set_xlabel("edit similarity to the student's source trace")
        ax.set_ylabel("judge: semantic retention (1-5)")
        ax.set_xlim(0, 1.02)
        ax.set_ylim(0.8, 5.2)
        ax.set_title(student, fontsize=10)
        ax.grid(alpha=0.3)
        if any(s["student"] == student for s in rows):
            ax.legend(fontsize=8)
    fig.suptitle("Semantic retention of the rewritten streams (mean ± 95% CI)")
    return fig


def _read_curve(path) -> pl.DataFrame:
    df = pl.read_csv(path, schema_overrides={"step": pl.Float64, "loss": pl.Float64, "lr": pl.Float64})
    return df.select("step", "loss").filter(pl.col("loss").is_finite())


def training_curves(run_rows, defaults, colors):
    """Training loss per step at the Table 1 setting: one panel per student and objective."""
    runs = at_defaults(run_rows, defaults)
    names = ordered(r["student"] for r in runs) or ["(no runs)"]
    objs = [o for o in objectives(runs) if any(r["objective"] == o for r in runs)] or list(OBJECTIVES)
    fig, axes = _panels(len(objs), nrows=len(names))
    for i, student in enumerate(names):
        for j, o in enumerate(objs):
            ax = axes[i][j]
            for stream in ordered(r["stream"] for r in runs if r["student"] == student):
                seeds = [r for r in runs if (r["student"], r["stream"], r["objective"]) == (student, stream, o)]
                curves = [_read_curve(r["curve"]) for r in seeds]
                for c in curves:
                    ax.plot(c["step"], c["loss"], color=colors[stream], lw=0.7, alpha=0.6)
                if curves:
                    # the mean over seeds, on the steps every seed logged
                    mean = (
                        pl.concat(curves)
                        .group_by("step")
                        .agg(pl.col("loss").mean(), pl.len().alias("n"))
                        .filter(pl.col("n") == len(curves))
                        .sort("step")
                    )
                    ax.plot(
                        mean["step"], mean["loss"], color=colors[stream], lw=2, label=f"{stream} ({len(curves)} seeds)"
                    )
            ax.set_title(f"{student} — {o.upper()}", fontsize=10)
            ax.set_xlabel("step")
            ax.set_ylabel("training loss")
            ax.grid(alpha=0.3)
            if ax.get_legend_handles_labels()[0]:
                ax.legend(fontsize=8)
            else:
                ax.text(0.5, 0.5, "no runs", ha="center", va="center", transform=ax.transAxes, color="gray")
    fig.suptitle(f"Training curves ({setting_label(defaults)}; thin: seeds, thick: mean)")
    return fig


def figures(
    stream_rows: list[dict], run_rows: list[dict], base_rows: list[dict], defaults: dict, primary_reward: str = "reward"
) -> dict:
    """Every figure of the report by file stem: one panel per student, one color per stream."""
    colors = palette(ordered([*(s["stream"] for s in stream_rows), *(r["stream"] for r in run_rows)]))
    markers = markers_of(objectives(run_rows))
    common = (stream_rows, run_rows, base_rows, defaults, colors, markers)
    return {
        "reward_vs_utility": lambda: utility_scatter(
            "reward_mean", f"reward ({primary_reward}), mean ± 95% CI", "Perceived quality vs utility", *common
        ),
        "ppl_vs_utility": lambda: utility_scatter(
            "ppl", "student perplexity on the stream (adaptation cost)", "Adaptation cost vs utility", *common
        ),
        "segmented_ppl": lambda: segmented_ppl(stream_rows, run_rows, base_rows, colors),
        "training_curves": lambda: training_curves(run_rows, defaults, colors),
        "retention": lambda: retention(stream_rows, colors),
    }


def plot_figures(
    stream_rows: list[dict],
    run_rows: list[dict],
    base_rows: list[dict],
    defaults: dict,
    out_dir,
    primary_reward: str = "reward",
) -> list[Path]:
    """Draw and save every figure into ``out_dir`` (one at a time: each is closed once saved)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    return [
        save(draw(), out / f"{stem}.png")
        for stem, draw in figures(stream_rows, run_rows, base_rows, defaults, primary_reward).items()
    ]
