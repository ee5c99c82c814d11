"""The organism's built-in Oracle: symbolic, sends nothing, and answers every task of the
oracle interface (``scripts.backends.oracles.base``) from the problem's computation graph."""

from scripts.backends.oracles.base import OracleOutput, check_task
from scripts.data.verification import last_boxed
from scripts.organism import word_problems as wp
from scripts.organism.styles import restyle


class BuiltinOracle:
    """A symbolic oracle for the embedded organism. It repairs every wrong step from the
    problem's computation graph, so its logic is always right; what differs between tasks is
    style. ``refine`` repairs and then rewrites in the Oracle's style (``spec["style"]``: the
    switches of ``scripts.organism.styles``, each with a strength) -- logical repair coupled with
    drift, as the paper found; ``style_align`` edits only the wrong numbers and keeps every other
    character (so Style-Aligned is SLM-RFT with its wrong numbers fixed: its closeness to SLM-RFT
    holds by construction); ``synthesize`` writes a fresh, compact solution with steps fused
    pairwise (which changes the arithmetic a step asks, not only its style).

    Its ``judge`` is symbolic too: the share of the source trace's correct step results (true
    equations on the solution path, and the final answer) that the rewrite still states,
    mapped linearly to 1-5 (none kept: 1, all kept: 5). Only values count, so formatting is
    ignored by construction; a repaired wrong step neither adds nor removes retention, and
    fused steps lose the intermediate results they skip."""

    def __init__(self, spec: dict, cache: str | None = None):
        self.spec = spec
        self.items = 0

    def run(self, task: str, items: list[dict]) -> list[OracleOutput]:
        check_task(task)
        self.items += len(items)
        return [self._one(task, it) for it in items]

    def usage(self) -> dict:
        return {
            "backend": "builtin",
            "items": self.items,
            "cached": 0,
            "requests_sent": 0,
            "retries": 0,
            "failed": 0,
            "failed_reasons": {},
            "prompt_tokens": 0,
            "completion_tokens": 0,
            "estimated_cost": 0.0,
        }

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
            style = self.spec.get("style") or {}
            return OracleOutput(restyle(repaired, style, f"{self.spec.get('seed') or 0}:{item['id']}"), edits=edits)
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
