"""The organism's Oracle style switches: each rewrites what it says and nothing else; the
style-only switches keep every equation's tokens; strengths are doses; the result is repeatable."""

import random

import pytest

from scripts.organism import word_problems as wp
from scripts.organism.styles import STYLE_ONLY, SWITCHES, restyle


def traces(n=40):
    out = []
    for i in range(n):
        rng = random.Random(i)
        g = wp.sample_graph(rng, rng.randint(2, 4), 99)
        out.append((g, wp.native_solution(g, random.Random(i))))
    return out


def equations(text):
    return [m.group(0) for m in wp.NATIVE_EQUATION.finditer(text)]


@pytest.mark.parametrize("switch", SWITCHES)
def test_every_switch_keeps_every_step_correct_and_changes_the_text(switch):
    for g, native in traces():
        styled = restyle(native, {switch: 1.0}, "s")
        assert styled != native
        assert wp.check_steps(styled, g) == (len(g.steps), len(g.steps)), styled
        assert f"\\boxed{{{g.answer}}}" in styled


@pytest.mark.parametrize("switch", STYLE_ONLY)
def test_style_only_switches_keep_the_equations_as_the_student_writes_them(switch):
    for _, native in traces():
        assert equations(restyle(native, {switch: 1.0}, "s")) == equations(native)


def test_notation_is_the_switch_that_changes_the_arithmetic():
    for _, native in traces():
        styled = restyle(native, {"notation": 1.0}, "s")
        assert equations(styled) == [] and ("+" in styled or "-" in styled or "\\times" in styled)


def test_each_switch_does_what_its_name_says():
    g, native = traces(1)[0]
    assert all(line.startswith("- ") for line in restyle(native, {"layout": 1.0}, "s").split("\n")[1:-1])
    assert restyle(native, {"spacing": 1.0}, "s") == native.replace("\n", "\n\n")
    assert restyle(native, {"granularity": 1.0}, "s").count("\n") == native.count("\n") + len(g.steps)
    ordered = restyle(native, {"ordering": 1.0}, "s").split("\n")[1:-1]
    assert all(wp.NATIVE_EQUATION.match(line) for line in ordered)  # the equation first
    latex = restyle(native, {"latex": 1.0}, "s")
    assert latex.count("\\(") == len(g.steps) + 2  # the start, every step, the answer
    worded = restyle(native, {"wording": 1.0}, "s")
    assert " so " not in worded and "which gives" in worded


def test_a_strength_is_a_dose_and_the_same_seed_gives_the_same_text():
    styled = {s: [restyle(t, {"latex": s}, f"{i}") for i, (_, t) in enumerate(traces(200))] for s in (0.0, 0.5, 1.0)}
    share = {s: sum(t.count("\\(") for t in ts) for s, ts in styled.items()}
    assert share[0.0] == 0 < share[0.5] < share[1.0]
    assert 0.35 < share[0.5] / share[1.0] < 0.65
    _, native = traces(1)[0]
    assert restyle(native, {"latex": 0.5}, "a") == restyle(native, {"latex": 0.5}, "a")
