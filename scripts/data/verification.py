"""Final-answer checking with math-verify, safe against pathological answers.

math-verify's own timeouts use ``signal.alarm`` (main thread only; its TimeoutException does
not derive from Exception), and some inputs hang in sympy regardless. So every check runs
in a worker *process* with math-verify's integer timeout inside, and the parent enforces an
outer deadline per item: a worker that overruns is killed, the item is recorded as
``timeout`` (counted as wrong) and the pool is rebuilt for the remaining items.
"""

import multiprocessing as mp
from dataclasses import dataclass

from tqdm import tqdm


@dataclass(frozen=True)
class Verdict:
    correct: bool
    reason: str  # correct | wrong | no_boxed | unparsable | unfinished | timeout | error
    extracted: str = ""


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


def _check(gold: str, completion: str, timeout_s: int) -> Verdict:
    # Imported here: the parent process never needs sympy.
    from math_verify import LatexExtractionConfig, parse, verify

    if last_boxed(completion) is None:
        return Verdict(False, "no_boxed")
    boxed_only = [LatexExtractionConfig(boxed_match_priority=0, try_extract_without_anchor=False)]
    try:
        pred = parse(completion, extraction_config=boxed_only, parsing_timeout=timeout_s)
        if not pred:
            return Verdict(False, "unparsable")
        gold_parsed = parse(f"${gold}$", parsing_timeout=timeout_s)
        ok = verify(gold_parsed, pred, timeout_seconds=timeout_s)  # gold first: not symmetric
    except BaseException as e:  # math-verify's TimeoutException is not an Exception
        return Verdict(False, "timeout" if "imeout" in type(e).__name__ else "error", repr(e)[:200])
    return Verdict(bool(ok), "correct" if ok else "wrong", str(pred[-1])[:200])


def _check_item(args):
    return _check(*args)


def verify_answers(
    items: list[tuple[str, str]], timeout_s: int = 3, workers: int = 2, desc: str = "verifying"
) -> list[Verdict]:
    """Check each (gold answer, completion) pair; order is preserved.

    ``timeout_s`` bounds math-verify inside the worker; a worker still busy after
    ``2 * timeout_s + 5`` seconds on one item is killed and the item counts as ``timeout``."""
    if not isinstance(timeout_s, int) or timeout_s < 1:
        raise ValueError(f"verification timeout must be a positive integer of seconds, got {timeout_s!r}")
    outer = 2 * timeout_s + 5
    verdicts: list[Verdict | None] = [None] * len(items)
    todo = list(range(len(items)))
    ctx = mp.get_context("fork")
    bar = tqdm(total=len(items), desc=desc, mininterval=2)
    while todo:
        with ctx.Pool(max(1, workers)) as pool:
            pending = [(i, pool.apply_async(_check_item, ((*items[i], timeout_s),))) for i in todo]
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
