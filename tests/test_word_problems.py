import random

from scripts.organism import word_problems as wp
from scripts.organism.styles import SWITCHES, restyle


def graphs(n=50, seed=0):
    rng = random.Random(seed)
    return [wp.sample_graph(rng, rng.randint(2, 4), 99) for _ in range(n)]


def test_running_values_stay_in_range_and_answers_are_integers():
    for g in graphs(200):
        assert all(0 <= v <= 99 for v in g.values)
        assert isinstance(g.answer, int)


def test_graph_round_trips_through_json():
    for g in graphs():
        assert wp.Graph.from_json(g.to_json()) == g


def test_problem_text_states_every_operand_and_asks_the_question():
    g = wp.Graph("Mia", "apples", 12, (wp.Step("add", 7, 0), wp.Step("sub", 5, 1), wp.Step("mul", 2, 0)))
    text = wp.problem_text(g)
    assert text.startswith("Mia has 12 apples.")
    assert "7 more apples" in text and "loses 5 apples" in text and "doubles the apples" in text
    assert text.endswith("How many apples does Mia have now?")
    assert g.answer == 28


def test_clean_solutions_in_every_style_check_fully_correct():
    for g in graphs():
        native = wp.native_solution(g)
        styled = [restyle(native, {s: 1.0}, "t") for s in SWITCHES] + [
            restyle(native, dict.fromkeys(SWITCHES, 1.0), "t")
        ]
        for trace in (native, *styled, wp.oracle_synthesis(g), wp.reference_solution(g)):
            correct, stated = wp.check_steps(trace, g)
            assert stated > 0 and correct == stated, trace


def test_slips_keep_the_answer_but_carried_errors_change_it():
    g = wp.Graph("Tom", "coins", 10, (wp.Step("add", 5, 0), wp.Step("add", 3, 0), wp.Step("sub", 4, 0)))
    slipped = wp.native_solution(g, random.Random(1), slip=1.0)
    assert slipped.endswith(f"\\boxed{{{g.answer}}}.")
    assert wp.check_steps(slipped, g)[0] == 0
    carried = wp.native_solution(g, random.Random(1), carried_error=1.0)
    assert not carried.endswith(f"\\boxed{{{g.answer}}}.")


def test_repair_fixes_every_wrong_number_and_touches_nothing_else():
    for i, g in enumerate(graphs(40)):
        broken = wp.native_solution(g, random.Random(i), slip=0.4, carried_error=0.4)
        repaired, edits = wp.repair_native(broken, g)
        assert repaired == wp.native_solution(g, random.Random(i)) or wp.check_steps(repaired, g)[0] == len(g.steps)
        assert wp.check_steps(repaired, g) == (len(g.steps), len(g.steps))
        assert repaired.endswith(f"\\boxed{{{g.answer}}}.")
        # Only digits may differ: the words, spacing and layout are the student's.
        strip = lambda t: "".join(c for c in t if not c.isdigit())  # noqa: E731
        assert strip(repaired) == strip(broken)
        assert (edits == 0) == (broken == repaired)


def test_repair_refuses_a_trace_that_does_not_follow_the_steps():
    g = graphs(1)[0]
    lines = wp.native_solution(g).split("\n")
    try:
        wp.repair_native("\n".join(lines[:1] + lines[2:]), g)
    except ValueError as e:
        assert "equations" in str(e)
    else:
        raise AssertionError("a trace with a missing step was 'repaired'")


def test_oracle_styles_drift_from_the_native_one():
    g = graphs(1, seed=3)[0]
    native = wp.native_solution(g)
    refined = restyle(native, {"notation": 1.0, "latex": 1.0, "spacing": 1.0}, "t")
    assert "\\(" in refined and "\n\n" in refined and " + " not in refined
    assert "\\(" not in native
    assert len(wp.stated_equations(wp.oracle_synthesis(g))) <= (len(g.steps) + 1) // 2
