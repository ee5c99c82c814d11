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
- the learnability probe: the share of *result tokens* (the number written right after ``=``: what a
  step asks the student to compute) that the student predicts as its top choice under teacher
  forcing. A stream can drift in style while staying as learnable (the probe holds) or change
  what the arithmetic looks like to the student (the probe falls);
- for the drift analyses (``scripts.analysis.drift``), ``<stream>.tokens.npz``: every Q1 token id with
  its NLL, and the unigram counts of all completion tokens with each token's decoded text.

The forward pass itself is the generation backend's ``score`` (transformers or vLLM); this
module turns its token NLLs and ranks into the measures above.
"""

import math
import re

import numpy as np

from scripts.backends.generation.base import TraceTokens

QUARTERS = 4
RESULT = re.compile(r"=\s*(-?\d+)")  # a step's result: the number right after "="


def quarter_sums(nll: np.ndarray) -> list[tuple[float, int]]:
    """(NLL sum, token count) per contiguous quarter of one trace."""
    return [(float(q.sum()), len(q)) for q in np.array_split(nll, QUARTERS)]


def summarise(per_trace: list[np.ndarray]) -> dict:
    tokens = sum(len(n) for n in per_trace)
    total = sum(float(n.sum()) for n in per_trace)
    summary = {
        "traces": len(per_trace),
        "tokens": tokens,
        "mean_nll": total / tokens,
        "ppl": math.exp(total / tokens),
        "ppl_mean_per_trace": float(np.mean([math.exp(n.mean()) for n in per_trace if len(n)])),
    }
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
    return {
        "low_prob_threshold": threshold,
        "low_prob_fraction": sum(low) / tokens,
        "low_prob_fraction_mean_per_trace": float(np.mean([n / len(t.nll) for n, t in zip(low, kept)])),
        "rank_clip": clip,
        "mean_clipped_rank": mean_rank,
        "mean_surprisal": mean_surprisal,
        "rsr": mean_rank / max(mean_surprisal, 1e-12),
        "rsr_mean_per_trace": float(np.mean([rank_surprisal_ratio(t.rank, t.nll, clip) for t in kept])),
    }


def token_data(traces: list[TraceTokens], tokenizer) -> dict[str, np.ndarray]:
    """What the drift analyses read: Q1 token ids with their NLL (per trace, by offsets) and the
    unigram counts of all completion tokens with each token's decoded text."""
    q1 = [np.array_split(np.arange(len(t.ids)), QUARTERS)[0] for t in traces]
    offsets = np.cumsum([0] + [len(q) for q in q1]).astype(np.int64)
    every = np.concatenate([t.ids for t in traces]) if traces else np.zeros(0, np.int64)
    vocab, counts = np.unique(every, return_counts=True)
    return {
        "q1_offsets": offsets,
        "q1_token_ids": np.concatenate([t.ids[q] for t, q in zip(traces, q1)] or [np.zeros(0)]).astype(np.int32),
        "q1_nll": np.concatenate([t.nll[q] for t, q in zip(traces, q1)] or [np.zeros(0)]).astype(np.float32),
        "tokens_per_trace": np.array([len(t.ids) for t in traces], dtype=np.int32),
        "vocab_ids": vocab.astype(np.int32),
        "vocab_counts": counts.astype(np.int64),
        "vocab_text": np.array([tokenizer.decode([int(v)]) for v in vocab], dtype=np.str_),
    }


def result_tokens(trace: TraceTokens, completion: str) -> np.ndarray:
    """Which of a trace's completion tokens write a step's result (overlap a number after "=")."""
    mask = np.zeros(len(trace.ids), dtype=bool)
    if not len(trace.spans):
        return mask
    a, b = trace.spans[: len(mask), 0], trace.spans[: len(mask), 1]
    for m in RESULT.finditer(completion):
        mask[: len(a)] |= (a < m.end(1)) & (b > m.start(1))
    return mask


def learnability(stream: list[dict], traces: list[TraceTokens]) -> dict:
    """The probe over a stream: result tokens, and the share the student ranks first."""
    n = top1 = 0
    for r, t in zip(stream, traces):
        mask = result_tokens(t, r["trace"])
        n += int(mask.sum())
        top1 += int((t.rank[mask] == 1).sum())
    return {"result_tokens": n, "result_token_accuracy": top1 / n if n else math.nan}


def per_trace(stream: list[dict], traces: list[TraceTokens], threshold: float, clip: int) -> list[dict]:
    """One record per trace: tokens, NLL sum (whole and per quarter), low-probability count, RSR,
    result tokens and how many of them the student ranks first."""
    masks = [result_tokens(t, r["trace"]) for r, t in zip(stream, traces)]
    return [
        {
            "result_tokens": int(m.sum()),
            "result_top1": int((t.rank[m] == 1).sum()),
            "id": r["id"],
            "tokens": len(t.nll),
            "truncated": t.truncated,
            "nll": float(t.nll.sum()),
            "quarters": [s for s, _ in quarter_sums(t.nll)],
            "low_prob": low_prob_count(t.nll, threshold),
            "rank_sum": int(np.minimum(t.rank, clip).sum()),
            "rsr": _finite_or_none(rank_surprisal_ratio(t.rank, t.nll, clip)),
        }
        for r, t, m in zip(stream, traces, masks)
    ]


def stream_summary(name: str, stream: list[dict], traces: list[TraceTokens], threshold: float, clip: int) -> dict:
    return {
        "stream": name,
        **summarise([t.nll for t in traces]),
        "truncated_traces": sum(t.truncated for t in traces),
        **learner_compatibility(traces, threshold, clip),
        **learnability(stream, traces),
    }


def _finite_or_none(x: float):
    return x if math.isfinite(x) else None
