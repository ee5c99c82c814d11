"""What both generation backends share: a sample, the tokens that end a sample, and how a
(prompt, completion) pair is tokenized for scoring, so both backends see the same token ids."""

from dataclasses import dataclass

import numpy as np

from scripts.infrastructure.stage_log import StageError


@dataclass(frozen=True)
class Sample:
    text: str
    finish_reason: str  # "stop": the model ended it (EOS / stop token); "length": cut at max_new_tokens
    prompt_tokens: int
    completion_tokens: int


@dataclass
class TraceTokens:
    """One trace's completion tokens under the student: ids, NLL (nats) and rank (1 = top)."""

    ids: np.ndarray
    nll: np.ndarray
    rank: np.ndarray
    truncated: bool = False  # the trace ran past the student's context: scored up to its end


def stop_token_ids(tokenizer, student: dict) -> list[int]:
    """The tokenizer's EOS, then the student's extra stop tokens (each must be one token)."""
    ids = [tokenizer.eos_token_id]
    for token in student.get("stop_tokens") or []:
        tid = tokenizer.convert_tokens_to_ids(token)
        if tid is None or tid == tokenizer.unk_token_id:
            raise StageError(
                f"stop token {token!r} of student {student.get('name')!r} is not one token "
                f"of its tokenizer ({student['path']})"
            )
        ids.append(tid)
    return list(dict.fromkeys(ids))


def encode_completions(
    tokenizer, prompts: list[str], completions: list[str], context: int | None = None
) -> list[tuple[list[int], int, bool]]:
    """Each (prompt + completion token ids, index of the first completion token, truncated?).
    The completion starts where the prompt's own tokens and the whole text's tokens diverge. A
    sequence longer than the student's ``context`` is cut to ``context - 1`` tokens (the room
    vLLM leaves for one generated token), the same for both backends."""
    limit = context - 1 if context else None
    encoded = []
    for p, c in zip(prompts, completions):
        p_ids = tokenizer(p)["input_ids"]
        full = tokenizer(p + c)["input_ids"]
        start = 0
        while start < min(len(p_ids), len(full)) and p_ids[start] == full[start]:
            start += 1
        truncated = limit is not None and len(full) > limit
        encoded.append((full[:limit] if truncated else full, max(start, 1), truncated))
    return encoded
