"""The Oracle, behind one interface: ``oracle(spec).run(task, items) -> list[OracleOutput]``.

Tasks (the study's oracle streams):
- ``refine``: minimal, targeted repair of the student's trace (Oracle-Refined);
- ``synthesize``: solve the problem from scratch (Oracle-Synthesized);
- ``style_align``: repair the logic while keeping the student's wording, notation, spacing,
  step granularity, layout and order (Style-Aligned Refinement).

Each item has ``id, problem, answer, trace`` (the student's source trace) and, for generated
problems, ``graph``. Backends: ``builtin`` (symbolic, below); an OpenAI-compatible client
registers itself in ``BACKENDS`` the same way.
"""


from dataclasses import dataclass

from scripts import word_problems as wp

TASKS = ("refine", "synthesize", "style_align")


@dataclass(frozen=True)
class OracleOutput:
    trace: str | None  # None: the oracle gave nothing usable; ``reason`` says why
    reason: str = "ok"
    edits: int = 0  # spans of the source trace the oracle changed (repairs only)


class BuiltinOracle:
    """A symbolic oracle for the embedded organism. It repairs every wrong step from the
    problem's computation graph, so its logic is always right; what differs between tasks is
    style. ``refine`` repairs and then writes in the Oracle's own notation (LaTeX inline math,
    compact operators, blank lines) -- logical repair coupled with drift, as the paper found;
    ``style_align`` edits only the wrong numbers and keeps every other character;
    ``synthesize`` writes a fresh, compact solution with steps fused pairwise."""

    def __init__(self, spec: dict):
        self.spec = spec

    def run(self, task: str, items: list[dict]) -> list[OracleOutput]:
        if task not in TASKS:
            raise ValueError(f"unknown oracle task {task!r}; expected one of {TASKS}")
        return [self._one(task, it) for it in items]

    def _one(self, task: str, item: dict) -> OracleOutput:
        if not item.get("graph"):
            return OracleOutput(None, "builtin oracle needs a generated problem (no computation graph)")
        g = wp.Graph.from_json(item["graph"])
        if task == "synthesize":
            return OracleOutput(wp.oracle_synthesis(g))
        try:
            repaired, edits = wp.repair_native(item["trace"], g)
        except ValueError as e:
            return OracleOutput(None, f"source trace does not follow the problem's steps: {e}")
        if task == "refine":
            return OracleOutput(wp.oracle_notation(repaired), edits=edits)
        return OracleOutput(repaired, edits=edits)


BACKENDS = {"builtin": BuiltinOracle}


def oracle(spec: dict):
    if spec["backend"] not in BACKENDS:
        raise ValueError(f"unknown oracle backend {spec['backend']!r}; available: {sorted(BACKENDS)}")
    return BACKENDS[spec["backend"]](spec)
