"""The organism's built-in *process reward* -- not a learned reward model. It checks every
equation a trace states against the problem's computation graph (is the arithmetic true, and is
its result one of the correct running values?) and the final boxed answer against the
reference, and returns

    reward = (step precision + final-answer correctness) / 2        in [0, 1]

so a trace with a slip in one step scores below a fully repaired one. It ignores format by
construction: only stated values count."""

from scripts.data.verification import last_boxed
from scripts.infrastructure.stage_log import StageError
from scripts.organism import word_problems as wp


class ProcessReward:
    def __init__(self, spec: dict, name: str = "process"):
        self.spec, self.name = spec, name

    def score(self, items: list[dict]) -> list[float]:
        out = []
        for it in items:
            if not it.get("graph"):
                raise StageError(f"builtin process reward needs a generated problem; {it['id']} has no graph")
            g = wp.Graph.from_json(it["graph"])
            correct, stated = wp.check_steps(it["trace"], g)
            precision = correct / stated if stated else 0.0
            final = 1.0 if (last_boxed(it["trace"]) or "").strip() == str(g.answer) else 0.0
            out.append((precision + final) / 2)
        return out
