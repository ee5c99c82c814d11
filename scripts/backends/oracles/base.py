"""What every oracle backend answers with, and the tasks it is asked.

Tasks (the study's oracle streams, and the retention judge):
- ``refine``: minimal, targeted repair of the student's trace (Oracle-Refined);
- ``synthesize``: solve the problem from scratch (Oracle-Synthesized);
- ``style_align``: repair the logic while keeping the student's wording, notation, spacing,
  step granularity, layout and order (Style-Aligned Refinement);
- ``judge``: semantic retention of a rewrite, a score from 1 (unrelated) to 5 (the same
  reasoning), formatting ignored.

Items of the rewriting tasks have ``id, problem, answer, trace`` (the student's source trace)
and, for generated problems, ``graph``; ``judge`` items have ``id, problem, source_trace,
rewrite`` (and ``graph``).
"""

from dataclasses import dataclass

REWRITE_TASKS = ("refine", "synthesize", "style_align")
TASKS = (*REWRITE_TASKS, "judge")

# Keys of ``oracles.<name>`` that decide whether and how a request is sent, never what it
# answers (a budget cap, the Batch API, how the estimate counts): the rules leave them out of the
# oracle stages' params, so changing one reruns no finished stream.
SENDING_KEYS = ("budget_usd", "batch", "estimate")


def answer_spec(spec: dict) -> dict:
    """An oracle's config without its ``SENDING_KEYS``: what its stages' params hold."""
    return {k: v for k, v in spec.items() if k not in SENDING_KEYS}


@dataclass(frozen=True)
class OracleOutput:
    trace: str | None  # None: the oracle gave nothing usable; ``reason`` says why
    reason: str = "ok"
    edits: int = 0  # spans of the source trace the oracle changed (repairs only)
    score: float | None = None  # judge: retention score in [1, 5]
    prompt_tokens: int = 0  # what the request cost (counted for cached answers too)
    completion_tokens: int = 0
    cached: bool = False  # answered from the cache, not sent in this run


def check_task(task: str) -> None:
    if task not in TASKS:
        raise ValueError(f"unknown oracle task {task!r}; expected one of {TASKS}")
