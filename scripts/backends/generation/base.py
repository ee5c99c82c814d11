"""What both generation backends share: a sample, the tokens that end a sample, and how a
(prompt, completion) pair is tokenized for scoring, so both backends see the same token ids."""

from dataclasses import dataclass, field

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
    """One trace's completion tokens under the student: ids, NLL (nats), rank (1 = top), and the
    character span of each token in the completion (empty where the tokenizer gives none)."""

    ids: np.ndarray
    nll: np.ndarray
    rank: np.ndarray
    truncated: bool = False  # the trace ran past the student's context: scored up to its end
    spans: np.ndarray = field(default_factory=lambda: np.zeros((0, 2), dtype=np.int64))


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
) -> list[tuple[list[int], int, bool, np.ndarray]]:
    """Each (prompt + completion token ids, index of the first completion token, truncated?, the
    completion tokens' character spans in the completion). The completion starts where the
    prompt's own tokens and the whole text's tokens diverge. A sequence longer than the
    student's ``context`` is cut to ``context - 1`` tokens (the room vLLM leaves for one generated
    token), the same for both backends. Spans need a fast tokenizer (else they are empty)."""
    limit = context - 1 if context else None
    fast = getattr(tokenizer, "is_fast", False)
    encoded = []
    for p, c in zip(prompts, completions):
        p_ids = tokenizer(p)["input_ids"]
        whole = tokenizer(p + c, return_offsets_mapping=fast)
        full = whole["input_ids"]
        start = 0
        while start < min(len(p_ids), len(full)) and p_ids[start] == full[start]:
            start += 1
        start = max(start, 1)
        truncated = limit is not None and len(full) > limit
        full = full[:limit] if truncated else full
        spans = (
            np.asarray(whole["offset_mapping"][start : len(full)], dtype=np.int64).reshape(-1, 2) - len(p)
            if fast
            else np.zeros((0, 2), dtype=np.int64)
        )
        encoded.append((full, start, truncated, spans))
    return encoded
