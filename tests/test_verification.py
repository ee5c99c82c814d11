import time

import pytest

from scripts.data import verification
from scripts.data.verification import last_boxed, verify_answers


def test_last_boxed_handles_nested_braces_and_picks_the_last():
    assert last_boxed(r"first \boxed{1} then \boxed{\frac{1}{2}}.") == r"\frac{1}{2}"
    assert last_boxed("no answer") is None
    assert last_boxed(r"\boxed{unclosed") is None


def test_boxed_answers_are_verified_against_the_reference():
    verdicts = verify_answers(
        [
            ("28", r"So 14 * 2 = 28. The answer is \boxed{28}."),
            ("28", r"The answer is \boxed{27}."),
            ("0.5", r"The answer is \(\boxed{\frac{1}{2}}\)."),
            ("28", "3 or maybe 28"),  # a bare trailing number is not an answer: boxed-only
        ],
        timeout_s=2,
        workers=2,
    )
    assert [v.reason for v in verdicts] == ["correct", "wrong", "correct", "no_boxed"]
    assert [v.correct for v in verdicts] == [True, False, True, False]


def test_a_float_timeout_is_refused_with_a_clear_error():
    with pytest.raises(ValueError, match="whole seconds|positive integer"):
        verify_answers([("1", r"\boxed{1}")], timeout_s=2.5)


def _hang(args):
    gold, completion, timeout_s, extraction = args
    if "hang" in completion:
        time.sleep(3600)
    return verification._check(gold, completion, timeout_s, extraction)


def test_a_hung_check_is_killed_counted_as_timeout_and_the_rest_still_verified(monkeypatch):
    # Workers are forked, so they inherit the patched checker.
    monkeypatch.setattr(verification, "_check_item", _hang)
    t = time.monotonic()
    verdicts = verify_answers(
        [("1", r"\boxed{1}"), ("2", r"hang \boxed{2}"), ("3", r"\boxed{3}"), ("4", r"\boxed{5}")],
        timeout_s=1,
        workers=1,
    )
    assert [v.reason for v in verdicts] == ["correct", "timeout", "correct", "wrong"]
    assert time.monotonic() - t < 30


def test_answer_extraction_falls_back_as_the_qwen_math_harness_does_when_configured():
    items = [
        ("26", "Tom has 20 apples and buys 6 more.\nThe answer is 26."),
        ("26", "So the final answer is: $26$"),
        ("26", "20 + 6 = 26 apples in all"),
        ("26", r"The answer is \boxed{25}, I think the answer is 26."),  # a box wins over the text
        ("26", "no number here"),
    ]
    reasons = {
        mode: [(v.reason, v.source) for v in verify_answers(items, timeout_s=2, workers=1, extraction=mode)]
        for mode in ("boxed", "answer_is", "last_number")
    }
    assert reasons["boxed"] == [("no_boxed", "")] * 3 + [("wrong", "boxed"), ("no_boxed", "")]
    assert reasons["answer_is"] == [
        ("correct", "answer_is"),
        ("correct", "answer_is"),
        ("no_answer", ""),
        ("wrong", "boxed"),
        ("no_answer", ""),
    ]
    assert reasons["last_number"][:3] == [
        ("correct", "answer_is"),
        ("correct", "answer_is"),
        ("correct", "last_number"),
    ]
    assert reasons["last_number"][4] == ("no_answer", "")
    with pytest.raises(ValueError, match="unknown answer extraction"):
        verify_answers(items, extraction="anything")
