"""Semantic retention of each rewritten (oracle) stream: how much of the student's source trace
a rewrite keeps (the paper's 1-5 retention column). Two measures per trace:

- ``judge_score``: a judge (``retention.judge``, one oracle for every stream as in the paper, else
  the stream's own) scores the (source, rewrite) pair on a 1-5 scale with formatting ignored
  (the oracle's ``judge`` task: an API oracle through its client, cache and
  ``prompts/judge.v1.md``; the built-in oracle symbolically), on a seeded sample of the
  rewrites (``retention.sample``; all by default);
- ``edit_similarity``: difflib's character-level similarity ratio of source and rewrite (0-1),
  cheap and purely textual, so unlike the judge it does count formatting.

A judge reply without a 1-5 score, or a request that failed, leaves the trace unscored with
its reason; the summary counts them and gives the mean with a 95% interval of both measures.
"""

import difflib
import random
from collections import Counter

from tqdm import tqdm

from scripts.analysis.statistics import mean_ci95
from scripts.backends.oracles import oracle


def edit_similarity(source: str, rewrite: str) -> float:
    # autojunk off: its popularity heuristic would junk spaces and digits in long traces
    return difflib.SequenceMatcher(None, source, rewrite, autojunk=False).ratio()


def judged_sample(stream: list[dict], size: int | None, seed: int) -> list[dict]:
    """The traces the judge reads: all, or ``size`` of them drawn without replacement (in the
    stream's order), the same for every run of one config."""
    if size is None or size >= len(stream):
        return stream
    keep = set(random.Random(seed).sample(range(len(stream)), size))
    return [r for i, r in enumerate(stream) if i in keep]


def retention(
    stream: list[dict], graphs: dict, oracle_spec: dict, cache: str | None, sample: int | None = None, seed: int = 0
) -> tuple[list[dict], dict]:
    """(one record per trace, summary) of a stream's retention: the judge reads ``sample`` of the
    rewrites (all when None), the edit similarity covers every one."""
    items = [
        {
            "id": r["id"],
            "problem": r["problem"],
            "source_trace": r["source_trace"],
            "rewrite": r["trace"],
            "graph": graphs.get(r["id"]),
        }
        for r in stream
    ]
    judge = oracle(oracle_spec, cache)
    judged = judged_sample(items, sample, seed)
    verdicts = dict(zip((it["id"] for it in judged), judge.run("judge", judged)))
    records = []
    for it in tqdm(items, desc="edit similarity", mininterval=2):
        v = verdicts.get(it["id"])
        records.append(
            {
                "id": it["id"],
                "judge_score": v.score if v else None,
                "judge_reason": v.reason if v else "not in the judged sample",
                "edit_similarity": edit_similarity(it["source_trace"], it["rewrite"]),
            }
        )
    scored = [r["judge_score"] for r in records if r["judge_score"] is not None]
    unscored = [r for r in records if r["id"] in verdicts and r["judge_score"] is None]
    summary = {
        "sampled": len(judged),
        "judged": len(scored),
        "unscored": len(unscored),
        "unscored_reasons": dict(Counter(r["judge_reason"] for r in unscored)),
        "judge_score": mean_ci95(scored),
        "edit_similarity": mean_ci95([r["edit_similarity"] for r in records]),
        "oracle": judge.usage(),
    }
    return records, summary
