"""The Oracle, behind one interface: ``oracle(spec, cache).run(task, items) -> list[OracleOutput]``,
then ``.usage()`` for what the run sent and cost.

Tasks (the study's oracle streams, and the retention judge):
- ``refine``: minimal, targeted repair of the student's trace (Oracle-Refined);
- ``synthesize``: solve the problem from scratch (Oracle-Synthesized);
- ``style_align``: repair the logic while keeping the student's wording, notation, spacing,
  step granularity, layout and order (Style-Aligned Refinement);
- ``judge``: semantic retention of a rewrite, a score from 1 (unrelated) to 5 (the same
  reasoning), formatting ignored.

Items of the rewriting tasks have ``id, problem, answer, trace`` (the student's source trace)
and, for generated problems, ``graph``; ``judge`` items have ``id, problem, source_trace,
rewrite`` (and ``graph``). Backends: ``builtin`` (symbolic, below) and ``openai`` (any
OpenAI-compatible endpoint, ``scripts/oracle_client.py``), registered in ``BACKENDS``.
"""


from dataclasses import dataclass

from scripts import word_problems as wp
from scripts.verification import last_boxed

REWRITE_TASKS = ("refine", "synthesize", "style_align")
TASKS = (*REWRITE_TASKS, "judge")


@dataclass(frozen=True)
class OracleOutput:
    trace: str | None  # None: the oracle gave nothing usable; ``reason`` says why
    reason: str = "ok"
    edits: int = 0  # spans of the source trace the oracle changed (repairs only)
    score: float | None = None  # judge: retention score in [1, 5]
    prompt_tokens: int = 0  # what the request cost (counted for cached answers too)
    completion_tokens: int = 0
    cached: bool = False  # answered from the cache, not sent in this run


class BuiltinOracle:
    """A symbolic oracle for the embedded organism. It repairs every wrong step from the
    problem's computation graph, so its logic is always right; what differs between tasks is
    style. ``refine`` repairs and then writes in the Oracle's own notation (LaTeX inline math,
    compact operators, blank lines) -- logical repair coupled with drift, as the paper found;
    ``style_align`` edits only the wrong numbers and keeps every other character;
    ``synthesize`` writes a fresh, compact solution with steps fused pairwise.

    Its ``judge`` is symbolic too: the share of the source trace's correct step results (true
    equations on the solution path, and the final answer) that the rewrite still states,
    mapped linearly to 1-5 (none kept: 1, all kept: 5). Only values count, so formatting is
    ignored by construction; a repaired wrong step neither adds nor removes retention, and
    fused steps lose the intermediate results they skip."""

    def __init__(self, spec: dict, cache: str | None = None):
        self.spec = spec
        self.items = 0

    def run(self, task: str, items: list[dict]) -> list[OracleOutput]:
        if task not in TASKS:
            raise ValueError(f"unknown oracle task {task!r}; expected one of {TASKS}")
        self.items += len(items)
        return [self._one(task, it) for it in items]

    def usage(self) -> dict:
        return {"backend": "builtin", "items": self.items, "cached": 0, "requests_sent": 0, "retries": 0,
                "failed": 0, "failed_reasons": {}, "prompt_tokens": 0, "completion_tokens": 0,
                "estimated_cost": 0.0}

    def _one(self, task: str, item: dict) -> OracleOutput:
        if not item.get("graph"):
            return OracleOutput(None, "builtin oracle needs a generated problem (no computation graph)")
        g = wp.Graph.from_json(item["graph"])
        if task == "judge":
            return judge_retention(item["source_trace"], item["rewrite"], g)
        if task == "synthesize":
            return OracleOutput(wp.oracle_synthesis(g))
        try:
            repaired, edits = wp.repair_native(item["trace"], g)
        except ValueError as e:
            return OracleOutput(None, f"source trace does not follow the problem's steps: {e}")
        if task == "refine":
            return OracleOutput(wp.oracle_notation(repaired), edits=edits)
        return OracleOutput(repaired, edits=edits)


def step_results(trace: str, g: wp.Graph) -> set[int]:
    """Results of the trace's correct steps (true and on the solution path), and its final
    answer when that is right."""
    on_path = set(g.values[1:])
    out = {stated for _, true, stated in wp.stated_equations(trace) if true == stated and stated in on_path}
    answer = last_boxed(trace)
    if answer is not None and answer.strip() == str(g.answer):
        out.add(g.answer)
    return out


def judge_retention(source: str, rewrite: str, g: wp.Graph) -> OracleOutput:
    kept = step_results(source, g)
    if not kept:
        return OracleOutput(None, "source trace states no correct step to retain")
    stated = {s for _, _, s in wp.stated_equations(rewrite)}
    answer = last_boxed(rewrite)
    if answer is not None and answer.strip().lstrip("-").isdigit():
        stated.add(int(answer.strip()))
    share = len(kept & stated) / len(kept)
    return OracleOutput(None, "ok", score=1.0 + 4.0 * share)


def _openai_oracle(spec: dict, cache: str | None = None):
    from scripts.oracle_client import OpenAIOracle  # the openai package only where it is used

    return OpenAIOracle(spec, cache)


BACKENDS = {"builtin": BuiltinOracle, "openai": _openai_oracle}


def oracle(spec: dict, cache: str | None = None):
    """The backend ``spec`` names; ``cache`` is the file that keeps its finished requests
    across runs (backends that send none ignore it)."""
    if spec["backend"] not in BACKENDS:
        raise ValueError(f"unknown oracle backend {spec['backend']!r}; available: {sorted(BACKENDS)}")
    return BACKENDS[spec["backend"]](spec, cache)
