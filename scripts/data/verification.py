"""Final-answer checking with math-verify, safe against pathological answers.

math-verify's own timeouts use ``signal.alarm`` (main thread only; its TimeoutException does
not derive from Exception), and some inputs hang in sympy regardless. So every check runs
in a worker *process* with math-verify's integer timeout inside, and the parent enforces an
outer deadline per item: a worker that overruns is killed, the item is recorded as
``timeout`` (counted as wrong) and the pool is rebuilt for the remaining items.

**Answer extraction** (``EXTRACTIONS``, a config choice per student and benchmark):

- ``boxed`` (the default, and rejection sampling's): the last ``\\boxed{}`` only; a completion
  without one is ``no_boxed``;
- ``answer_is``: the last ``\\boxed{}``, else what follows the last "the answer is" / "final
  answer is" on its line;
- ``last_number``: those, else the last number of the completion -- the order of the
  Qwen2.5-Math evaluation harness's ``extract_answer`` (its default for every prompt type).

A completion with nothing to extract is ``no_answer`` under the fallbacks; a verdict says
which rule found the answer (``source``).
"""

import multiprocessing as mp
import re
from dataclasses import dataclass

from tqdm import tqdm

EXTRACTIONS = ("boxed", "answer_is", "last_number")
UNEXTRACTED = ("no_boxed", "no_answer")  # reasons of a completion with no answer to check
ANSWER_IS = re.compile(r"(?:he|final) answer is")
NUMBER = re.compile(r"-?\d*\.?\d+")


@dataclass(frozen=True)
class Verdict:
    correct: bool
    reason: str  # correct | wrong | no_boxed | no_answer | unparsable | unfinished | timeout | error
    extracted: str = ""
    source: str = ""  # which extraction rule found the answer: boxed | answer_is | last_number


def last_boxed(text: str) -> str | None:
    """Content of the last ``\\boxed{...}`` (balanced braces), or None."""
    start = text.rfind("\\boxed{")
    if start < 0:
        return None
    i, depth = start + len("\\boxed{"), 1
    for j in range(i, len(text)):
        depth += {"{": 1, "}": -1}.get(text[j], 0)
        if depth == 0:
            return text[i:j]
    return None


def fallback_answer(completion: str, extraction: str) -> tuple[str, str] | None:
    """(answer text, rule) of a completion without a ``\\boxed{}``, by the ``answer_is`` and
    ``last_number`` fallbacks; None when the mode has none or finds nothing."""
    if extraction in ("answer_is", "last_number"):
        found = list(ANSWER_IS.finditer(completion))
        if found:
            text = completion[found[-1].end() :].strip().split("\n")[0].strip().lstrip(":").strip().rstrip(".")
            if text:
                return text, "answer_is"
    if extraction == "last_number":
        numbers = NUMBER.findall(completion.replace(",", ""))
        if numbers:
            return numbers[-1], "last_number"
    return None


def _check(gold: str, completion: str, timeout_s: int, extraction: str = "boxed") -> Verdict:
    # Imported here: the parent process never needs sympy.
    from math_verify import LatexExtractionConfig, parse, verify

    boxed = last_boxed(completion) is not None
    fallback = None if boxed else fallback_answer(completion, extraction)
    if not boxed and fallback is None:
        return Verdict(False, "no_boxed" if extraction == "boxed" else "no_answer")
    boxed_only = [LatexExtractionConfig(boxed_match_priority=0, try_extract_without_anchor=False)]
    try:
        if boxed:
            pred = parse(completion, extraction_config=boxed_only, parsing_timeout=timeout_s)
        else:  # the extracted text alone, as math (a bare number or expression gets $...$)
            text = fallback[0] if "$" in fallback[0] or "\\(" in fallback[0] else f"${fallback[0]}$"
            pred = parse(text, parsing_timeout=timeout_s)
        if not pred:
            return Verdict(False, "unparsable")
        gold_parsed = parse(f"${gold}$", parsing_timeout=timeout_s)
        ok = verify(gold_parsed, pred, timeout_seconds=timeout_s)  # gold first: not symmetric
    except BaseException as e:  # math-verify's TimeoutException is not an Exception
        return Verdict(False, "timeout" if "imeout" in type(e).__name__ else "error", repr(e)[:200])
    source = "boxed" if boxed else fallback[1]
    return Verdict(bool(ok), "correct" if ok else "wrong", str(pred[-1])[:200], source)


def _check_item(args):
    return _check(*args)


def verify_answers(
    items: list[tuple[str, str]],
    timeout_s: int = 3,
    workers: int = 2,
    desc: str = "verifying",
    extraction: str = "boxed",
) -> list[Verdict]:
    """Check each (gold answer, completion) pair, the answer found by ``extraction`` (one of
    ``EXTRACTIONS``); order is preserved.

    ``timeout_s`` bounds math-verify inside the worker; a worker still busy after
    ``2 * timeout_s + 5`` seconds on one item is killed and the item counts as ``timeout``."""
    if not isinstance(timeout_s, int) or timeout_s < 1:
        raise ValueError(f"verification timeout must be a positive integer of seconds, got {timeout_s!r}")
    if extraction not in EXTRACTIONS:
        raise ValueError(f"unknown answer extraction {extraction!r}; one of {list(EXTRACTIONS)}")
    outer = 2 * timeout_s + 5
    verdicts: list[Verdict | None] = [None] * len(items)
    todo = list(range(len(items)))
    ctx = mp.get_context("fork")
    bar = tqdm(total=len(items), desc=desc, mininterval=2)
    while todo:
        with ctx.Pool(max(1, workers)) as pool:
            pending = [(i, pool.apply_async(_check_item, ((*items[i], timeout_s, extraction),))) for i in todo]
            todo = []
            for n, (i, res) in enumerate(pending):
                try:
                    verdicts[i] = res.get(timeout=outer)
                    bar.update()
                except mp.TimeoutError:
                    verdicts[i] = Verdict(False, "timeout")
                    bar.update()
                    # The hung worker is killed with the pool; unfinished items go round again.
                    todo = [j for j, r in pending[n + 1 :] if not _harvest(r, verdicts, j, bar)]
                    pool.terminate()
                    break
    bar.close()
    return verdicts  # type: ignore[return-value]


def _harvest(res, verdicts, j, bar) -> bool:
    if res.ready():
        verdicts[j] = res.get()
        bar.update()
        return True
    return False
