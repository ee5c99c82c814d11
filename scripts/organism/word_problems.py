"""The embedded organism's world: arithmetic word problems with a known computation graph.

A problem is a start value and a chain of operations (add, subtract, double, triple).
Solutions are written in four styles that stand for the study's streams:

- ``native``: the student's own wording, one equation per line, spaced operators, plain text;
- ``oracle``: a repaired native trace in the Oracle's style (``scripts.organism.styles``: wording,
  step granularity, ordering, list layout, LaTeX delimiters, spacing, and compact notation, each a
  switch with a strength) -- the distributional drift the paper measured;
- ``oracle_compact``: the Oracle solving from scratch, steps fused pairwise;
- ``reference``: a textbook solution in ``$...$`` math, standing for the dataset's own.

The same graph lets the built-in oracle repair wrong steps and the built-in reward check every
stated step, so nothing here guesses: each claim about a trace is checked against the graph.
"""

import ast
import operator
import random
import re
from dataclasses import dataclass

NAMES = ["Mia", "Tom", "Ana", "Leo", "Sara", "Ben", "Ivy", "Max", "Zoe", "Sam", "Eva", "Noah"]
PRONOUN = {"Mia": "she", "Ana": "she", "Sara": "she", "Ivy": "she", "Zoe": "she", "Eva": "she"}
ITEMS = ["apples", "marbles", "coins", "stickers", "books", "cards", "shells", "pencils"]

# Verb phrases per operation: (problem text, native solution text).
ADD_VERBS = [
    ("finds {x} more", "finds {x} more"),
    ("buys {x} more", "buys {x} more"),
    ("gets {x} more", "gets {x} more"),
]
SUB_VERBS = [("gives away {x}", "gives away {x}"), ("loses {x}", "loses {x}"), ("sells {x}", "sells {x}")]
MUL_VERBS = {2: ("doubles the {item}", "doubles them"), 3: ("triples the {item}", "triples them")}
NATIVE_OPENERS = ["Then", "Next", "Now"]
OP_SYMBOL = {"add": "+", "sub": "-", "mul": "*"}


@dataclass(frozen=True)
class Step:
    op: str  # add | sub | mul
    x: int
    verb: int  # index of the verb phrase, fixed by the problem text


@dataclass(frozen=True)
class Graph:
    name: str
    item: str
    start: int
    steps: tuple[Step, ...]

    @property
    def values(self) -> list[int]:
        """Correct running values: start, then after each step."""
        out = [self.start]
        for s in self.steps:
            out.append(apply(s.op, out[-1], s.x))
        return out

    @property
    def answer(self) -> int:
        return self.values[-1]

    def to_json(self) -> dict:
        return {
            "name": self.name,
            "item": self.item,
            "start": self.start,
            "steps": [[s.op, s.x, s.verb] for s in self.steps],
        }

    @staticmethod
    def from_json(d: dict) -> "Graph":
        return Graph(d["name"], d["item"], d["start"], tuple(Step(*s) for s in d["steps"]))


def apply(op: str, a: int, x: int) -> int:
    return {"add": a + x, "sub": a - x, "mul": a * x}[op]


def sample_graph(rng: random.Random, n_steps: int, max_value: int) -> Graph:
    """A random chain whose every running value stays in [0, max_value]."""
    name, item = rng.choice(NAMES), rng.choice(ITEMS)
    value = rng.randint(2, max(3, max_value // 4))
    start, steps = value, []
    for _ in range(n_steps):
        choices = (
            (["add"] if value + 2 <= max_value else [])
            + (["sub"] if value >= 3 else [])
            + (["mul"] if value * 2 <= max_value else [])
        )
        op = rng.choice(choices)
        if op == "add":
            x, verb = rng.randint(2, min(20, max_value - value)), rng.randrange(len(ADD_VERBS))
        elif op == "sub":
            x, verb = rng.randint(1, min(20, value - 1)), rng.randrange(len(SUB_VERBS))
        else:
            x = 3 if value * 3 <= max_value and rng.random() < 0.3 else 2
            verb = 0
        steps.append(Step(op, x, verb))
        value = apply(op, value, x)
    return Graph(name, item, start, tuple(steps))


def pronoun(g: Graph) -> str:
    return PRONOUN.get(g.name, "he")


def problem_text(g: Graph) -> str:
    p = pronoun(g).capitalize()
    parts = [f"{g.name} has {g.start} {g.item}."]
    for i, s in enumerate(g.steps):
        if s.op == "add":
            phrase = ADD_VERBS[s.verb][0].format(x=s.x) + f" {g.item}"
        elif s.op == "sub":
            phrase = SUB_VERBS[s.verb][0].format(x=s.x) + f" {g.item}"
        else:
            phrase = MUL_VERBS[s.x][0].format(item=g.item)
        parts.append(f"{p} {phrase}." if i == 0 else f"Then {p.lower()} {phrase}.")
    parts.append(f"How many {g.item} does {g.name} have now?")
    return " ".join(parts)


def _native_phrase(s: Step) -> str:
    if s.op == "add":
        return ADD_VERBS[s.verb][1].format(x=s.x)
    if s.op == "sub":
        return SUB_VERBS[s.verb][1].format(x=s.x)
    return MUL_VERBS[s.x][1]


def native_solution(g: Graph, rng: random.Random | None = None, slip: float = 0.0, carried_error: float = 0.0) -> str:
    """The student's style. With ``rng``, imperfections like a small model's:
    a *slip* states a wrong result that the next step ignores (flawed step, right answer);
    a *carried error* states a wrong result and carries it on (wrong final answer)."""
    rng = rng or random.Random(0)
    lines = [f"{g.name} starts with {g.start} {g.item}."]
    value = g.start
    for i, s in enumerate(g.steps):
        right = apply(s.op, value, s.x)
        stated, carried = right, right
        u = rng.random()
        if u < slip:
            stated = _wrong(rng, right)
        elif u < slip + carried_error:
            stated = carried = _wrong(rng, right)
        opener = pronoun(g).capitalize() if i == 0 else f"{rng.choice(NATIVE_OPENERS)} {pronoun(g)}"
        lines.append(f"{opener} {_native_phrase(s)}, so {value} {OP_SYMBOL[s.op]} {s.x} = {stated}.")
        value = carried
    lines.append(f"The answer is \\boxed{{{value}}}.")
    return "\n".join(lines)


def _wrong(rng: random.Random, right: int) -> int:
    delta = rng.choice([-3, -2, -1, 1, 2, 3, 10, -10])
    return right + delta if right + delta >= 0 else right + abs(delta)


def oracle_synthesis(g: Graph) -> str:
    """The Oracle solving from scratch: compact, steps fused pairwise into one equation."""
    lines = [f"Start from \\({g.start}\\) {g.item}."]
    value = g.start
    steps = list(g.steps)
    for i in range(0, len(steps), 2):
        expr, v = str(value), value
        for s in steps[i : i + 2]:
            if s.op == "mul":
                expr = f"({expr})\\times {s.x}" if ("+" in expr or "-" in expr) else f"{expr}\\times {s.x}"
            else:
                expr = f"{expr}{OP_SYMBOL[s.op]}{s.x}"
            v = apply(s.op, v, s.x)
        lines.append(f"\\[{expr}={v}\\]")
        value = v
    lines.append(f"Therefore the answer is \\(\\boxed{{{value}}}\\).")
    return "\n\n".join(lines)


def reference_solution(g: Graph) -> str:
    """A textbook solution, the dataset's own style: one paragraph, ``$...$`` math, ``\\cdot``."""
    parts, value = [], g.start
    for s in g.steps:
        r = apply(s.op, value, s.x)
        sym = "\\cdot" if s.op == "mul" else OP_SYMBOL[s.op]
        parts.append(f"${value} {sym} {s.x} = {r}$")
        value = r
    return f"{g.name} ends with " + ", then ".join(parts) + f" {g.item}. Answer: $\\boxed{{{value}}}$."


def problem_set(name: str, spec: dict) -> list[dict]:
    """``spec["n"]`` distinct problems in the study's problem schema, each with its graph (which
    the built-in oracle and reward read)."""
    rng = random.Random(spec["seed"])
    out, seen = [], set()
    while len(out) < spec["n"]:
        g = sample_graph(rng, rng.randint(spec["min_steps"], spec["max_steps"]), spec["max_value"])
        text = problem_text(g)
        if text in seen:
            continue
        seen.add(text)
        out.append(
            {
                "id": f"{name}-{len(out):05d}",
                "problem": text,
                "answer": str(g.answer),
                "reference_solution": reference_solution(g),
                "source": "generator",
                "graph": g.to_json(),
            }
        )
    return out


# ---- reading traces back: every stated equation, in any of the styles above ----------------

NATIVE_EQUATION = re.compile(r"(\d+) ([+\-*]) (\d+) = (-?\d+)")
# an equation's left-hand side starts at a number or a parenthesis (a list's "- " is not a minus)
_MATH = re.compile(r"((?:\(\s*)*\d[\d\s+\-*()]*)=\s*(-?\d+)")
_OPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul}


def _normalise(text: str) -> str:
    for a, b in (
        ("\\(", " "),
        ("\\)", " "),
        ("\\[", " "),
        ("\\]", " "),
        ("$", " "),
        ("\\times", "*"),
        ("\\cdot", "*"),
        ("×", "*"),
    ):
        text = text.replace(a, b)
    return text


def _evaluate(expr: str) -> int | None:
    try:
        node = ast.parse(expr.strip(), mode="eval").body
    except SyntaxError:
        return None

    def ev(n):
        if isinstance(n, ast.Constant) and isinstance(n.value, int):
            return n.value
        if isinstance(n, ast.BinOp) and type(n.op) in _OPS:
            return _OPS[type(n.op)](ev(n.left), ev(n.right))
        raise ValueError

    try:
        return ev(node)
    except (ValueError, RecursionError):
        return None


def stated_equations(trace: str) -> list[tuple[str, int | None, int]]:
    """(left-hand side, its true value or None if unparsable, stated result) per equation."""
    out = []
    for m in _MATH.finditer(_normalise(trace)):
        lhs = m.group(1).strip()
        if not re.search(r"[+\-*]", lhs):
            continue
        out.append((lhs, _evaluate(lhs), int(m.group(2))))
    return out


def check_steps(trace: str, g: Graph) -> tuple[int, int]:
    """(correct, stated): a stated equation is correct when it is true arithmetic and its
    result is one of the graph's correct running values (it lies on the solution path)."""
    on_path = set(g.values[1:])
    eqs = stated_equations(trace)
    correct = sum(1 for _, true, stated in eqs if true == stated and stated in on_path)
    return correct, len(eqs)


def repair_native(trace: str, g: Graph) -> tuple[str, int]:
    """Edit only the wrong numbers of a native-style trace, keeping every other character.

    Returns the repaired trace and the number of spans edited. Raises ValueError when the
    trace's equations do not line up with the graph's steps (then it is not a repair)."""
    lines = trace.split("\n")
    eq_lines = [i for i, line in enumerate(lines) if NATIVE_EQUATION.search(line)]
    if len(eq_lines) != len(g.steps):
        raise ValueError(f"{len(eq_lines)} equations for {len(g.steps)} steps")
    values, edits = g.values, 0

    def fix(line: str, pattern: re.Pattern, wanted: list[int]) -> str:
        nonlocal edits
        m = pattern.search(line)
        pieces, last = [], 0
        for k, want in enumerate(wanted, start=1):
            if m.group(k) != str(want):
                pieces.append(line[last : m.start(k)] + str(want))
                last = m.end(k)
                edits += 1
        return "".join(pieces) + line[last:]

    start = re.compile(r"starts with (\d+)")
    if start.search(lines[0]):
        lines[0] = fix(lines[0], start, [g.start])
    for k, i in enumerate(eq_lines):
        s = g.steps[k]
        m = NATIVE_EQUATION.search(lines[i])
        if m.group(2) != OP_SYMBOL[s.op]:
            raise ValueError(f"step {k + 1} uses {m.group(2)!r}, the problem says {s.op}")
        lines[i] = fix(lines[i], re.compile(r"(\d+) [+\-*] (\d+) = (-?\d+)"), [values[k], s.x, values[k + 1]])
    boxed = re.compile(r"\\boxed\{(-?\d+)\}")
    for i in range(len(lines) - 1, -1, -1):
        if boxed.search(lines[i]):
            lines[i] = fix(lines[i], boxed, [g.answer])
            break
    else:
        raise ValueError("no final boxed answer")
    return "\n".join(lines), edits
