"""The bill before it is paid: per student and oracle stream (and its retention judge), the
requests the oracle will be sent, their prompt tokens, expected completion tokens and cost, one
by one and through the Batch API, against what the oracles' caches say is already spent and the
budget caps (``snakemake oracle_estimate``; ``scripts.backends.oracles.estimate`` says how
tokens are counted).

The items are the student's solvable set where rejection sampling has made it (the very
requests a stream will send; those already answered in the oracle's cache are counted apart and
cost nothing). Before that, the pool stands in: ``oracle_costs.solve_rate`` of its problems are
expected to be solvable, and a sample of them (``oracle_costs.sample``), each with its reference
solution in place of the student's trace, gives the mean tokens per request. The retention judge
(``retention.judge``, else the stream's own oracle) is expected to see ``oracle_costs.acceptance``
of a stream's rewrites (at most ``retention.sample``), each as long as its source trace.
"""

import math

from scripts.analysis.formatting import DASH, markdown_table
from scripts.backends.oracles import ORACLES
from scripts.backends.oracles.budget import spent
from scripts.infrastructure.records import read_jsonl

COUNTS = ("requests", "cached", "prompt_tokens", "completion_tokens", "cost", "batch_cost")


def items_for(source: str, path: str, costs: dict) -> tuple[list[dict], float, str]:
    """(items, how many requests one item stands for, a description of the basis)."""
    records = read_jsonl(path)
    if source == "solvable":
        return records, 1.0, f"the solvable set ({len(records)} problems)"
    sample = [{**r, "trace": r.get("reference_solution") or ""} for r in records[: costs["sample"]]]
    expected = len(records) * costs["solve_rate"]
    basis = (
        f"the pool ({len(records)} problems) x expected solve rate {costs['solve_rate']:g} = {expected:.0f} "
        f"problems; tokens from {len(sample)} pool problems, reference solutions standing in for traces"
    )
    return sample, (expected / len(sample) if sample else 0.0), basis


def _scaled(e: dict, factor: float) -> dict:
    out = {k: e[k] * factor for k in COUNTS}
    out["requests"], out["cached"] = round(out["requests"]), round(out["cached"])
    return out


def estimate(inputs: dict, streams: dict, oracles: dict, costs: dict, caches: dict, retention: dict) -> dict:
    """``inputs``: student -> {source: solvable | pool, path}; ``caches``: oracle -> cache file;
    ``retention``: the config's block (who judges, and how many rewrites per stream)."""
    rows, basis, methods = [], {}, {}

    def backend(name):
        spec = {**oracles[name], "name": name}
        return ORACLES.load(spec["backend"], f"oracles.{name}.backend")(spec, None)

    for student, inp in inputs.items():
        items, factor, basis[student] = items_for(inp["source"], inp["path"], costs)
        judged = [{**it, "source_trace": it.get("trace") or "", "rewrite": it.get("trace") or ""} for it in items]
        kept = factor * len(items) * costs["acceptance"]  # rewrites expected per stream
        if retention["sample"] is not None:
            kept = min(kept, retention["sample"])
        for name, stream in streams.items():
            if stream["kind"] != "oracle":
                continue
            judge = retention["judge"] or stream["oracle"]
            for task, oracle, its, f in (
                (stream["task"], stream["oracle"], items, factor),
                ("judge", judge, judged, kept / len(items) if items else 0.0),
            ):
                row = {"student": student, "stream": name, "oracle": oracle, "task": task}
                sender = backend(oracle)
                if not hasattr(sender, "estimate"):  # the built-in oracle sends nothing
                    rows.append({**row, **{k: 0 for k in COUNTS}, "sends": False})
                    continue
                e = sender.estimate(task, its, caches.get(oracle))
                methods[oracle] = sender.counter.method
                rows.append({**row, **_scaled(e, f), "sends": True})
    per_oracle = {}
    for name in dict.fromkeys(r["oracle"] for r in rows):
        spec = oracles[name]
        mine = [r for r in rows if r["oracle"] == name]
        per_oracle[name] = {
            **{k: sum(r[k] for r in mine) for k in COUNTS},
            "spent": spent(caches.get(name), spec),
            "budget_usd": spec.get("budget_usd"),
        }
    total = {k: sum(o[k] for o in per_oracle.values()) for k in (*COUNTS, "spent")}
    total["budget_usd"] = costs["budget_usd"]
    return {"basis": basis, "rows": rows, "oracles": per_oracle, "total": total, "methods": methods}


def _usd(v: float) -> str:
    if v is None or not math.isfinite(v):
        return DASH
    return f"{v:,.2f}" if v >= 1 or v == 0 else f"{v:.4f}"


def markdown(est: dict) -> str:
    """The estimate as Markdown."""
    out = ["# Oracle cost estimate, before any paid call", ""]
    for student, basis in est["basis"].items():
        out.append(f"- {student}: from {basis}.")
    out += [
        "",
        "Tokens and cost are those of the requests still to send (already cached answers cost nothing again). "
        f"Batch: the same requests through the Batch API, where the endpoint has a batch price ({DASH}: none).",
        "",
        markdown_table(
            [
                "Student",
                "Stream",
                "Oracle",
                "Task",
                "Requests",
                "Already cached",
                "Input tokens",
                "Expected output tokens",
                "Cost (USD)",
                "Batch (USD)",
            ],
            [
                [
                    r["student"],
                    r["stream"],
                    r["oracle"],
                    r["task"],
                    str(r["requests"]),
                    str(r["cached"]),
                    f"{r['prompt_tokens']:.0f}",
                    f"{r['completion_tokens']:.0f}",
                    _usd(r["cost"]) if r["sends"] else "sends nothing",
                    _usd(r["batch_cost"]) if r["sends"] else DASH,
                ]
                for r in est["rows"]
            ],
        ),
        "",
        "## Per oracle, against its budget",
        "",
        markdown_table(
            [
                "Oracle",
                "Requests",
                "Input tokens",
                "Expected output tokens",
                "Cost (USD)",
                "Batch (USD)",
                "Spent so far (USD)",
                "Budget (USD)",
            ],
            [
                [
                    name,
                    str(o["requests"] - o["cached"]),
                    f"{o['prompt_tokens']:.0f}",
                    f"{o['completion_tokens']:.0f}",
                    _usd(o["cost"]),
                    _usd(o["batch_cost"]),
                    _usd(o["spent"]),
                    DASH if o["budget_usd"] is None else f"{o['budget_usd']:g}",
                ]
                for name, o in est["oracles"].items()
            ]
            + [
                [
                    "all (oracle_costs.budget_usd)",
                    str(est["total"]["requests"] - est["total"]["cached"]),
                    f"{est['total']['prompt_tokens']:.0f}",
                    f"{est['total']['completion_tokens']:.0f}",
                    _usd(est["total"]["cost"]),
                    _usd(est["total"]["batch_cost"]),
                    _usd(est["total"]["spent"]),
                    DASH if est["total"]["budget_usd"] is None else f"{est['total']['budget_usd']:g}",
                ]
            ],
        ),
        "",
    ]
    for name, how in est["methods"].items():
        out.append(f"- {name}: prompt tokens counted with {how}.")
    out += [
        "",
        "Expected output tokens: per rewrite the estimate's output_ratio x the source trace's tokens plus "
        "output_extra_tokens (at most max_tokens), per judgement judge_output_tokens "
        "(oracles.<name>.estimate). Retention judgements: the expected kept rewrites "
        "(oracle_costs.acceptance), each as long as its source trace.",
        "",
    ]
    return "\n".join(out)
