"""Collection of the stage outputs the report reads: one record per stream (perceived quality,
adaptation cost, rejections, oracle usage, retention), per training run (setting, training
summary, utility) and per untrained student; and the groupings every table and figure shares
(the Table 1 setting, utility per stream and objective)."""

import math

import numpy as np

from scripts.infrastructure.records import read_json
from scripts.infrastructure.stage_log import StageError

OBJECTIVES = ("sft", "dft")  # the paper's utility columns; other objectives are appended
QUARTERS = ("ppl_q1", "ppl_q2", "ppl_q3", "ppl_q4")
BASE = "base"


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
            raise StageError(
                f"stream {s['stream']} of {s['student']} has no {primary_reward!r} reward summary "
                f"(have: {sorted(s['reward'])})"
            )
        reward = read_json(s["reward"][primary_reward])
        cost = read_json(s["adaptation_cost"])
        summary = read_json(s["summary"])
        for what, path, doc in (
            ("reward", s["reward"][primary_reward], reward),
            ("adaptation cost", s["adaptation_cost"], cost),
            ("stream summary", s["summary"], summary),
        ):
            _check(f"{what} stream", path, doc.get("stream"), s["stream"])
        _check("reward model", s["reward"][primary_reward], reward.get("reward_model"), primary_reward)
        rows.append(
            {
                "student": s["student"],
                "stream": s["stream"],
                "reward_mean": _num(reward.get("mean")),
                "reward_ci95_low": _num(reward.get("ci95_low")),
                "reward_ci95_high": _num(reward.get("ci95_high")),
                "ppl": _num(cost.get("ppl")),
                **{q: _num(cost.get(q)) for q in QUARTERS},
                "result_token_accuracy": _num(cost.get("result_token_accuracy")),
                "rejected": summary.get("rejected"),
                "kept": summary.get("kept"),
                "rejected_reasons": summary.get("rejected_reasons") or {},
                "oracle_usage": summary.get("oracle"),
                "retention": read_json(s["retention"]) if s.get("retention") else None,
            }
        )
    return rows


def _scores(path) -> dict:
    ev = read_json(path)
    bench = {name: _num(b.get("avg_at_k")) for name, b in ev.get("benchmarks", {}).items()}
    overall = ev.get("avg_at_k")
    if overall is None:
        overall = float(np.mean(list(bench.values()))) if bench else math.nan
    breakdown = {name: b["breakdown"] for name, b in ev.get("benchmarks", {}).items() if b.get("breakdown")}
    # share of samples with no answer to extract, per benchmark (older scores lack it: None)
    unextracted = {name: b.get("unextracted_share") for name, b in ev.get("benchmarks", {}).items()}
    return {
        "avg_at_k": _num(overall),
        "benchmarks": bench,
        "k": ev.get("k"),
        "breakdown": breakdown,
        "unextracted": unextracted,
    }


def collect_runs(runs: list[dict]) -> list[dict]:
    """One record per training run: its setting, training summary and utility."""
    rows = []
    for r in runs:
        train = read_json(r["train"])
        for key in ("objective", "seed", "lr", "batch_size", "epochs"):
            want = float(r[key]) if key in ("lr", "epochs") else r[key]
            _check(key, r["train"], train.get(key), want)
        rows.append(
            {
                "student": r["student"],
                "stream": r["stream"],
                "objective": r["objective"],
                "lr": float(r["lr"]),
                "batch_size": int(r["batch_size"]),
                "epochs": float(r["epochs"]),
                "seed": int(r["seed"]),
                "eval": r["eval"],
                "n_examples": train.get("n_examples"),
                "final_loss": _num(train.get("final_loss")),
                "curve": r["curve"],
                **_scores(r["eval"]),
            }
        )
    return rows


def collect_base(base: list[dict]) -> list[dict]:
    """The untrained student's utility: the floor every stream should lift."""
    return [{"student": b["student"], **_scores(b["eval"])} for b in base]


# --- groupings ---------------------------------------------------------------------------


def ordered(values) -> list:
    """Unique values in order of first appearance (the config's order)."""
    return list(dict.fromkeys(values))


def objectives(run_rows: list[dict], lead=OBJECTIVES) -> list[str]:
    return list(lead) + sorted({r["objective"] for r in run_rows} - set(lead))


def at_defaults(run_rows: list[dict], defaults: dict) -> list[dict]:
    """The runs at the Table 1 setting (lr, batch size, epochs)."""
    return [
        r
        for r in run_rows
        if math.isclose(r["lr"], float(defaults["lr"]), rel_tol=1e-9)
        and r["batch_size"] == int(defaults["batch_size"])
        and math.isclose(r["epochs"], float(defaults["epochs"]), rel_tol=1e-9)
    ]


def utility(run_rows: list[dict], defaults: dict) -> dict:
    """(student, stream, objective) -> {avg_at_k: mean over seeds, lo, hi: seed range, seeds}
    at the Table 1 setting; runs whose Avg@k is missing do not count as seeds."""
    groups: dict[tuple, list[float]] = {}
    for r in at_defaults(run_rows, defaults):
        if math.isfinite(r["avg_at_k"]):
            groups.setdefault((r["student"], r["stream"], r["objective"]), []).append(r["avg_at_k"])
    return {
        key: {"avg_at_k": float(np.mean(v)), "lo": min(v), "hi": max(v), "seeds": len(v)} for key, v in groups.items()
    }


def utility_of(util: dict, student: str, rows: list[dict], objective: str) -> list[float]:
    """Avg@k of each stream in ``rows`` under ``objective`` (NaN where there is no run)."""
    return [util.get((student, s["stream"], objective), {}).get("avg_at_k", math.nan) for s in rows]


def k_label(records: list[dict]) -> str:
    ks = {r["k"] for r in records if r.get("k") is not None}
    return f"Avg@{ks.pop()}" if len(ks) == 1 else "Avg@k"


def setting_label(d: dict) -> str:
    return f"lr {d['lr']:g}, batch size {d['batch_size']}, {d['epochs']:g} epochs"


def student_streams(student: str, stream_rows: list[dict], run_rows: list[dict]) -> list[dict]:
    """The student's stream records, plus empty ones for streams that only have runs."""
    have = {s["stream"]: s for s in stream_rows if s["student"] == student}
    empty = {
        "reward_mean": math.nan,
        "reward_ci95_low": math.nan,
        "reward_ci95_high": math.nan,
        "ppl": math.nan,
        **{q: math.nan for q in QUARTERS},
        "rejected": None,
    }
    names = ordered([*have, *(r["stream"] for r in run_rows if r["student"] == student)])
    return [have.get(n, {"student": student, "stream": n, **empty}) for n in names]


def students(stream_rows, run_rows, base_rows) -> list[str]:
    return ordered([r["student"] for r in [*stream_rows, *run_rows, *base_rows]])
