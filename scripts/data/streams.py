"""Data streams over the solvable set. Every stream covers the same problems:

- ``slm_rft``: the student's own kept traces (rejection-sampling fine-tuning data);
- ``reference``: the dataset's own reference solutions;
- oracle streams (``oracle_refined``, ``oracle_synthesized``, ``style_aligned``, ...): an
  oracle task applied to each kept trace.

An oracle output without a final boxed answer, or whose answer does not verify against the
reference, is kept out of the stream with its reason (``<stream>.rejected.jsonl``), and the
report counts them. An oracle stream's summary also says what the oracle was sent and what it
cost (``oracle``: requests sent, answers from the cache, failures with reasons, tokens,
estimated cost); the oracle's finished requests are cached per item across runs.
"""

from collections import Counter

from scripts.backends.oracles import oracle
from scripts.data.verification import verify_answers
from scripts.infrastructure.stage_log import StageError


def build_stream(
    name: str,
    spec: dict,
    solvable: list[dict],
    oracle_spec: dict | None,
    timeout_s: int,
    workers: int,
    oracle_cache: str | None = None,
) -> tuple[list[dict], list[dict], dict | None]:
    """(kept records, rejected records, the oracle's usage or None) of one stream."""
    kind = spec["kind"]
    usage = None
    if kind == "slm_rft":
        traces = [(s, s["trace"], 0) for s in solvable]
        rejected = []
    elif kind == "reference":
        traces = [(s, s["reference_solution"], 0) for s in solvable if s.get("reference_solution")]
        rejected = [
            {"id": s["id"], "reason": "no reference solution"} for s in solvable if not s.get("reference_solution")
        ]
    elif kind == "oracle":
        backend = oracle(oracle_spec, oracle_cache)
        outputs = backend.run(spec["task"], solvable)
        usage = backend.usage()
        traces = [(s, o.trace, o.edits) for s, o in zip(solvable, outputs) if o.trace is not None]
        rejected = [{"id": s["id"], "reason": o.reason} for s, o in zip(solvable, outputs) if o.trace is None]
        verdicts = verify_answers(
            [(s["answer"], t) for s, t, _ in traces], timeout_s, workers, desc=f"verifying {name}"
        )
        rejected += [
            {"id": s["id"], "reason": f"answer does not verify ({v.reason})"}
            for (s, _, _), v in zip(traces, verdicts)
            if not v.correct
        ]
        traces = [x for x, v in zip(traces, verdicts) if v.correct]
    else:
        raise StageError(f"stream {name}: unknown kind {kind!r}")
    kept = [
        {
            "id": s["id"],
            "problem": s["problem"],
            "answer": s["answer"],
            "trace": t,
            "source_trace": s["trace"],
            "edits": e,
            "stream": name,
        }
        for s, t, e in traces
    ]
    return kept, rejected, usage


def summary(name: str, kept: list[dict], rejected: list[dict], usage: dict | None) -> dict:
    return {
        "stream": name,
        "kept": len(kept),
        "rejected": len(rejected),
        "rejected_reasons": dict(Counter(r["reason"] for r in rejected)),
        "edited_spans": sum(r["edits"] for r in kept),
        "oracle": usage,
    }
