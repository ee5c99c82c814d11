"""Rejection sampling: keep ONE correct native trace per problem -- the first correct one in
sample order, no re-ranking by quality. A trace counts as correct only if the generation
finished (EOS) and its last ``\\boxed{}`` answer verifies against the reference with
math-verify (or, where the config chooses another answer extraction for the student, the answer
that extraction finds). The problems that keep a trace are the *solvable set*, shared by every data stream,
so problem difficulty is the same for all of them."""

from scripts.data.verification import Verdict, verify_answers


def judge(
    problems: list[dict], traces: list[dict], timeout_s: int, workers: int, extraction: str = "boxed"
) -> list[Verdict]:
    """Each trace's verdict; ``extraction`` (``scripts.data.verification.EXTRACTIONS``) says how
    its answer is found (boxed only, the default)."""
    answers = {p["id"]: p["answer"] for p in problems}
    finished = [t for t in traces if t["finish_reason"] == "stop"]
    checked = iter(
        verify_answers([(answers[t["id"]], t["trace"]) for t in finished], timeout_s, workers, extraction=extraction)
    )
    return [next(checked) if t["finish_reason"] == "stop" else Verdict(False, "unfinished") for t in traces]


def select(problems: list[dict], traces: list[dict], verdicts: list[Verdict]) -> list[dict]:
    """The solvable set: each problem with its first correct trace, in pool order."""
    first = {}
    for t, v in zip(traces, verdicts):
        if v.correct and t["id"] not in first:
            first[t["id"]] = t
    return [
        {**p, "trace": first[p["id"]]["trace"], "sample": first[p["id"]]["sample"]}
        for p in problems
        if p["id"] in first
    ]
