"""Adaptation cost: what the student's one forward pass over a stream's traces says about them.

Per trace, the negative log-likelihood (surprisal, nats) of each completion token conditioned on
the prompt (the problem in the student's template); prompt tokens carry nothing. From that one
pass, per trace and per stream:

- perplexity, globally (``exp`` of the mean token NLL over all traces) and per quarter Q1..Q4 of
  each trace, split by token position, so one sees *where* in a trace the drift costs the learner;
- the fraction of low-probability tokens: completion tokens the student gives p < tau
  (``low_prob_threshold``, default 0.1). A one-threshold split of the learner's own token
  probabilities, as ProFit (Liu et al., arXiv 2601.09195) uses to separate the tokens it masks
  in SFT; we found no single canonical definition or threshold for it as a data metric, so tau
  is a config key;
- the Rank-Surprisal Ratio (Yang et al., "Which Reasoning Trajectories Teach Students to Reason
  Better?", arXiv 2601.14249). For completion token t with student logits z, its rank is
  r_t = 1 + |{v : z_v > z_t}| (1 = the student's top choice) and its surprisal s_t = -log p_t.
  A trace's RSR is sum_t min(r_t, C) / sum_t s_t, i.e. its mean clipped rank over its mean
  surprisal (C = ``rank_clip``, 100 as the authors clip); equivalently a surprisal-weighted mean
  of r_t / s_t. A stream's RSR, as in the authors' code, is the mean over traces of the mean
  clipped rank divided by the mean over traces of the mean surprisal. Lower is better suited
  to the learner: informative (surprising) tokens that the student still ranks high;
- for the drift analyses (``scripts.drift``), ``<stream>.tokens.npz``: every Q1 token id with
  its NLL, and the unigram counts of all completion tokens with each token's decoded text.

Batches are sorted by length and right-padded, so a trace's numbers do not depend on its batch.
Throughput (tokens per second) goes to the job's log; the artifacts stay byte-identical.
"""


import math
import time
from dataclasses import dataclass

import numpy as np
from tqdm import tqdm

from scripts.records import read_json, read_jsonl, write_json, write_jsonl
from scripts.stage import logged

QUARTERS = 4


@dataclass
class TraceTokens:
    """One trace's completion tokens under the student: ids, NLL (nats) and rank (1 = top)."""

    ids: np.ndarray
    nll: np.ndarray
    rank: np.ndarray
    truncated: bool = False  # the trace ran past the student's context: scored up to its end


def encode_completions(tokenizer, prompts: list[str], completions: list[str],
                       context: int | None = None) -> list[tuple[list[int], int, bool]]:
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


def completion_tokens(model, tokenizer, prompts: list[str], completions: list[str],
                      batch_size: int = 32) -> list[TraceTokens]:
    """Each completion's token ids, NLL and rank given its prompt, in one forward pass each."""
    import torch

    encoded = encode_completions(tokenizer, prompts, completions, model.config.max_position_embeddings)
    order = sorted(range(len(encoded)), key=lambda i: (-len(encoded[i][0]), i))
    device = next(model.parameters()).device
    out: list = [None] * len(encoded)
    for b in tqdm(range(0, len(order), batch_size), desc="token NLL", mininterval=2):
        rows = order[b:b + batch_size]
        width = max(len(encoded[i][0]) for i in rows)
        pad = tokenizer.pad_token_id
        x = torch.tensor([encoded[i][0] + [pad] * (width - len(encoded[i][0])) for i in rows])
        mask = torch.tensor([[1] * len(encoded[i][0]) + [0] * (width - len(encoded[i][0])) for i in rows])
        with torch.inference_mode():
            logits = model(input_ids=x.to(device), attention_mask=mask.to(device)).logits[:, :-1].float()
            target = x[:, 1:, None].to(device)
            chosen = logits.gather(-1, target)
            nll = (torch.logsumexp(logits, dim=-1) - chosen.squeeze(-1)).cpu()
            rank = ((logits > chosen).sum(dim=-1) + 1).cpu()
        for r, i in enumerate(rows):
            full, start, truncated = encoded[i]
            out[i] = TraceTokens(ids=np.asarray(full[start:], dtype=np.int64),
                                 nll=nll[r, start - 1:len(full) - 1].numpy().astype(np.float64),
                                 rank=rank[r, start - 1:len(full) - 1].numpy().astype(np.int64),
                                 truncated=truncated)
    return out


def completion_tokens_vllm(engine, prompts: list[str], completions: list[str]) -> list[TraceTokens]:
    """The same as ``completion_tokens``, from vLLM's prompt log-probabilities (``engine`` is a
    ``scripts.generation.VLLMBackend``); one engine pass over every trace."""
    encoded = encode_completions(engine.tokenizer, prompts, completions, engine.context_length())
    scored = engine.score([full for full, _, _ in encoded], [start for _, start, _ in encoded])
    return [TraceTokens(ids=np.asarray(full[start:], dtype=np.int64), nll=nll, rank=rank, truncated=truncated)
            for (full, start, truncated), (nll, rank) in zip(encoded, scored)]


def completion_nll(model, tokenizer, prompts: list[str], completions: list[str],
                   batch_size: int = 32) -> list[np.ndarray]:
    """Per-token NLL (nats) of each completion given its prompt."""
    return [t.nll for t in completion_tokens(model, tokenizer, prompts, completions, batch_size)]


def quarter_sums(nll: np.ndarray) -> list[tuple[float, int]]:
    """(NLL sum, token count) per contiguous quarter of one trace."""
    return [(float(q.sum()), len(q)) for q in np.array_split(nll, QUARTERS)]


def summarise(per_trace: list[np.ndarray]) -> dict:
    tokens = sum(len(n) for n in per_trace)
    total = sum(float(n.sum()) for n in per_trace)
    summary = {"traces": len(per_trace), "tokens": tokens, "mean_nll": total / tokens,
               "ppl": math.exp(total / tokens),
               "ppl_mean_per_trace": float(np.mean([math.exp(n.mean()) for n in per_trace if len(n)]))}
    parts = [quarter_sums(n) for n in per_trace]
    for q in range(QUARTERS):
        s = sum(p[q][0] for p in parts)
        c = sum(p[q][1] for p in parts)
        summary[f"ppl_q{q + 1}"] = math.exp(s / c) if c else math.nan
    return summary


def low_prob_count(nll: np.ndarray, threshold: float) -> int:
    """Tokens with p < threshold, i.e. NLL > -log(threshold)."""
    return int((nll > -math.log(threshold)).sum())


def rank_surprisal_ratio(rank: np.ndarray, nll: np.ndarray, clip: int) -> float:
    """A trace's RSR: sum of clipped ranks over sum of surprisals (NaN for an empty trace)."""
    if not len(nll):
        return math.nan
    return float(np.minimum(rank, clip).sum()) / max(float(nll.sum()), 1e-12)


def learner_compatibility(traces: list[TraceTokens], threshold: float, clip: int) -> dict:
    """Stream-level low-probability fraction and RSR (the authors' dataset-level form)."""
    kept = [t for t in traces if len(t.nll)]
    tokens = sum(len(t.nll) for t in kept)
    low = [low_prob_count(t.nll, threshold) for t in kept]
    mean_rank = float(np.mean([np.minimum(t.rank, clip).mean() for t in kept]))
    mean_surprisal = float(np.mean([t.nll.mean() for t in kept]))
    return {"low_prob_threshold": threshold, "low_prob_fraction": sum(low) / tokens,
            "low_prob_fraction_mean_per_trace": float(np.mean([n / len(t.nll) for n, t in zip(low, kept)])),
            "rank_clip": clip, "mean_clipped_rank": mean_rank, "mean_surprisal": mean_surprisal,
            "rsr": mean_rank / max(mean_surprisal, 1e-12),
            "rsr_mean_per_trace": float(np.mean([rank_surprisal_ratio(t.rank, t.nll, clip) for t in kept]))}


def token_data(traces: list[TraceTokens], tokenizer) -> dict[str, np.ndarray]:
    """What the drift analyses read: Q1 token ids with their NLL (per trace, by offsets) and the
    unigram counts of all completion tokens with each token's decoded text."""
    q1 = [np.array_split(np.arange(len(t.ids)), QUARTERS)[0] for t in traces]
    offsets = np.cumsum([0] + [len(q) for q in q1]).astype(np.int64)
    every = np.concatenate([t.ids for t in traces]) if traces else np.zeros(0, np.int64)
    vocab, counts = np.unique(every, return_counts=True)
    return {"q1_offsets": offsets,
            "q1_token_ids": np.concatenate([t.ids[q] for t, q in zip(traces, q1)] or [np.zeros(0)]).astype(np.int32),
            "q1_nll": np.concatenate([t.nll[q] for t, q in zip(traces, q1)] or [np.zeros(0)]).astype(np.float32),
            "tokens_per_trace": np.array([len(t.ids) for t in traces], dtype=np.int32),
            "vocab_ids": vocab.astype(np.int32), "vocab_counts": counts.astype(np.int64),
            "vocab_text": np.array([tokenizer.decode([int(v)]) for v in vocab], dtype=np.str_)}


def main(snakemake) -> None:
    with logged(snakemake.log[0], snakemake.threads):
        p = snakemake.params
        student = read_json(snakemake.input.student)
        stream = read_jsonl(snakemake.input.stream)
        prompts = [student["prompt_template"].format(problem=r["problem"]) for r in stream]
        completions = [r["trace"] for r in stream]
        start = time.perf_counter()
        if p.backend == "vllm":
            from scripts.generation import VLLMBackend

            engine = VLLMBackend(student, engine=p.vllm)
            tokenizer = engine.tokenizer
            traces = completion_tokens_vllm(engine, prompts, completions)
        else:
            from scripts.student import load_student

            model, tokenizer = load_student(student)
            model.eval()
            import torch

            if torch.cuda.is_available():
                model.to("cuda")
            traces = completion_tokens(model, tokenizer, prompts, completions, p.batch_size)
        seconds = time.perf_counter() - start
        write_jsonl(snakemake.output.per_trace, [
            {"id": r["id"], "tokens": len(t.nll), "truncated": t.truncated, "nll": float(t.nll.sum()),
             "quarters": [s for s, _ in quarter_sums(t.nll)],
             "low_prob": low_prob_count(t.nll, p.low_prob_threshold),
             "rank_sum": int(np.minimum(t.rank, p.rank_clip).sum()),
             "rsr": _finite_or_none(rank_surprisal_ratio(t.rank, t.nll, p.rank_clip))}
            for r, t in zip(stream, traces)])
        np.savez_compressed(snakemake.output.tokens, trace_ids=np.array([r["id"] for r in stream], dtype=np.str_),
                            **token_data(traces, tokenizer))
        summary = {"stream": snakemake.wildcards.stream, **summarise([t.nll for t in traces]),
                   "truncated_traces": sum(t.truncated for t in traces),
                   **learner_compatibility(traces, p.low_prob_threshold, p.rank_clip)}
        write_json(snakemake.output.summary, summary)
        print(summary)
        tokens = sum(len(t.ids) for t in traces)
        print(f"throughput: {tokens / seconds:.1f} completion tokens/s ({tokens} tokens of {len(traces)} traces in "
              f"{seconds:.2f} s, batch size {p.batch_size})")


def _finite_or_none(x: float):
    return x if math.isfinite(x) else None


if __name__ == "__main__":
    main(snakemake)  # noqa: F821 -- injected by Snakemake's script directive
