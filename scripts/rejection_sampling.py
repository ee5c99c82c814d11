"""Rejection sampling: keep ONE correct native trace per problem -- the first correct one in
sample order, no re-ranking by quality. A trace counts as correct only if the generation
finished (EOS) and its last ``\\boxed{}`` answer verifies against the reference with
math-verify. The problems that keep a trace are the *solvable set*, written once here and
shared by every data stream, so problem difficulty is the same for all of them."""


from collections import Counter

from scripts.records import read_jsonl, write_json, write_jsonl
from scripts.stage import StageError, logged
from scripts.verification import Verdict, verify_answers


def judge(problems: list[dict], traces: list[dict], timeout_s: int, workers: int) -> list[Verdict]:
    answers = {p["id"]: p["answer"] for p in problems}
    finished = [t for t in traces if t["finish_reason"] == "stop"]
    checked = iter(verify_answers([(answers[t["id"]], t["trace"]) for t in finished], timeout_s, workers))
    return [next(checked) if t["finish_reason"] == "stop" else Verdict(False, "unfinished") for t in traces]


def select(problems: list[dict], traces: list[dict], verdicts: list[Verdict]) -> list[dict]:
    """The solvable set: each problem with its first correct trace, in pool order."""
    first = {}
    for t, v in zip(traces, verdicts):
        if v.correct and t["id"] not in first:
            first[t["id"]] = t
    return [{**p, "trace": first[p["id"]]["trace"], "sample": first[p["id"]]["sample"]}
            for p in problems if p["id"] in first]


def main(snakemake) -> None:
    with logged(snakemake.log[0], snakemake.threads):
        p = snakemake.params.spec
        problems, traces = read_jsonl(snakemake.input.pool), read_jsonl(snakemake.input.traces)
        verdicts = judge(problems, traces, p["timeout_s"], snakemake.threads)
        write_jsonl(snakemake.output.verdicts, [{"id": t["id"], "sample": t["sample"], "correct": v.correct,
                                                  "reason": v.reason, "extracted": v.extracted}
                                                 for t, v in zip(traces, verdicts)])
        solvable = select(problems, traces, verdicts)
        if not solvable:
            raise StageError("rejection sampling kept no problem: the student solved none of the pool")
        write_jsonl(snakemake.output.solvable, solvable)
        reasons = Counter(v.reason for v in verdicts)
        write_json(snakemake.output.summary, {
            "pool": len(problems), "traces": len(traces), "solvable": len(solvable),
            "solvable_fraction": len(solvable) / len(problems),
            "sample_accuracy": reasons["correct"] / max(1, len(traces)), "reasons": dict(reasons)})
        print(f"solvable: {len(solvable)} of {len(problems)} problems; verdicts {dict(reasons)}")


if __name__ == "__main__":
    main(snakemake)  # noqa: F821 -- injected by Snakemake's script directive
