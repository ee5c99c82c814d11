"""The organism's Oracle style: how a repaired native trace is rewritten, one switch at a time.

The paper's Oracle-Refined traces repair the logic *and* drift from the learner's style. Here that
drift is a set of separate switches, each with a strength in [0, 1] (the probability that it
rewrites a given step, or a given gap between lines), so that a dose of each can be given alone:

- ``wording``: other openers and connectors ("After that he ..., which gives ...");
- ``granularity``: a step split in two lines, the action and then its equation;
- ``ordering``: the equation first, the reason after it ("7 + 5 = 12, as then he ...");
- ``layout``: steps as a bulleted list ("- ...");
- ``latex``: LaTeX delimiters around the math (``\\(7 + 5 = 12\\)``, ``\\(\\boxed{12}\\)``);
- ``spacing``: a blank line between lines;
- ``notation``: compact operators and ``\\times`` (``7+5=12``, ``3\\times 2=6``). Unlike the other
  switches this one is NOT style alone: it changes how the arithmetic is tokenized, and with it
  what the student must compute in a notation it rarely saw. The other six leave every equation's
  tokens as the student writes them (``7 + 5 = 12``), so the arithmetic a step asks stays as
  learnable; the adaptation-cost stage measures that (the learnability probe).

``restyle(trace, style, seed)`` is deterministic: the same trace, style and seed give the same text.
"""

import random
import re

SWITCHES = ("wording", "granularity", "ordering", "layout", "latex", "spacing", "notation")
STYLE_ONLY = SWITCHES[:-1]  # the switches that leave the arithmetic's tokens as they are

_STEP = re.compile(
    r"^(?P<opener>He|She|(?:Then|Next|Now) (?:he|she)) (?P<phrase>[^,]+), so (?P<eq>\d+ [+\-*] \d+ = -?\d+)\.$"
)
_START = re.compile(r"^(?P<name>\S+) starts with (?P<start>\d+) (?P<item>.+)\.$")
_ANSWER = re.compile(r"^The answer is \\boxed\{(?P<v>-?\d+)\}\.$")
_OPENERS = {"Then": "After that", "Next": "Later", "Now": "At this point"}


def _math(eq: str, on: dict) -> str:
    if on["notation"]:
        eq = eq.replace(" * ", "\\times ").replace(" + ", "+").replace(" - ", "-").replace(" = ", "=")
    return f"\\({eq}\\)" if on["latex"] else eq


def _step(m: re.Match, on: dict) -> list[str]:
    opener, phrase, eq = m["opener"], m["phrase"], _math(m["eq"], on)
    connector = "which gives" if on["wording"] else "so"
    if on["wording"]:
        first, _, rest = opener.partition(" ")
        opener = f"{_OPENERS[first]} {rest}" if first in _OPENERS else f"First {opener.lower()}"
    if on["granularity"]:
        lines = [f"{opener} {phrase}.", f"{'That gives' if on['wording'] else 'So'} {eq}."]
        if on["ordering"]:
            lines = [f"{eq}.", f"{opener} {phrase}."]
    elif on["ordering"]:
        lines = [f"{eq}, as {opener[0].lower()}{opener[1:]} {phrase}."]
    else:
        lines = [f"{opener} {phrase}, {connector} {eq}."]
    if on["layout"]:
        lines[0] = f"- {lines[0]}"
    return lines


def restyle(trace: str, style: dict, seed: str) -> str:
    """A native-style trace rewritten in ``style`` (switch -> strength); lines it does not parse
    as native steps are kept as they are."""
    rng = random.Random(seed)
    out = []
    for line in trace.split("\n"):
        on = {s: rng.random() < style.get(s, 0.0) for s in SWITCHES}
        if m := _STEP.match(line):
            out += _step(m, on)
        elif m := _START.match(line):
            start = _math(m["start"], {**on, "notation": False})
            verb = "At first {name} has" if on["wording"] else "{name} starts with"
            out.append(f"{verb.format(name=m['name'])} {start} {m['item']}.")
        elif m := _ANSWER.match(line):
            boxed = f"\\boxed{{{m['v']}}}"
            boxed = f"\\({boxed}\\)" if on["latex"] else boxed
            out.append(f"So the final count is {boxed}." if on["wording"] else f"The answer is {boxed}.")
        else:
            out.append(line)
    gaps = [("\n\n" if rng.random() < style.get("spacing", 0.0) else "\n") for _ in out[1:]]
    return out[0] + "".join(g + line for g, line in zip(gaps, out[1:])) if out else trace
