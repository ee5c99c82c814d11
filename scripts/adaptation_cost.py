"""Adaptation cost: the student's perplexity on a stream's traces.

Per trace, the negative log-likelihood of each completion token conditioned on the prompt
(the problem in the student's template); prompt tokens carry nothing. Reported globally
(``exp`` of the mean token NLL over all traces) and per quarter Q1..Q4 of each trace, split
by token position, so one sees *where* in a trace the drift costs the learner."""


import math

import numpy as np
from tqdm import tqdm

from scripts.records import read_json, read_jsonl, write_json, write_jsonl
from scripts.stage import logged

QUARTERS = 4


def completion_nll(model, tokenizer, prompts: list[str], completions: list[str],
                   batch_size: int = 32) -> list[np.ndarray]:
    """Per-token NLL (nats) of each completion given its prompt."""
    import torch

    out = []
    for b in tqdm(range(0, len(prompts), batch_size), desc="token NLL", mininterval=2):
        ids, starts = [], []
        for p, c in zip(prompts[b:b + batch_size], completions[b:b + batch_size]):
            p_ids = tokenizer(p)["input_ids"]
            full = tokenizer(p + c)["input_ids"]
            start = 0  # the completion starts where prompt and prompt+completion tokens diverge
            while start < min(len(p_ids), len(full)) and p_ids[start] == full[start]:
                start += 1
            ids.append(full)
            starts.append(start)
        width = max(map(len, ids))
        pad = tokenizer.pad_token_id
        x = torch.tensor([s + [pad] * (width - len(s)) for s in ids])
        mask = torch.tensor([[1] * len(s) + [0] * (width - len(s)) for s in ids])
        with torch.inference_mode():
            logits = model(input_ids=x, attention_mask=mask).logits.float()
        logp = torch.log_softmax(logits[:, :-1], dim=-1)
        nll = -logp.gather(-1, x[:, 1:, None]).squeeze(-1)
        for i, (s, start) in enumerate(zip(ids, starts)):
            out.append(nll[i, max(start, 1) - 1:len(s) - 1].numpy().astype(np.float64))
    return out


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


def main(snakemake) -> None:
    from scripts.student import load_student

    with logged(snakemake.log[0], snakemake.threads):
        student = read_json(snakemake.input.student)
        model, tokenizer = load_student(student)
        model.eval()
        stream = read_jsonl(snakemake.input.stream)
        prompts = [student["prompt_template"].format(problem=r["problem"]) for r in stream]
        per_trace = completion_nll(model, tokenizer, prompts, [r["trace"] for r in stream],
                                   snakemake.params.spec["batch_size"])
        write_jsonl(snakemake.output.per_trace, [
            {"id": r["id"], "tokens": len(n), "nll": float(n.sum()),
             "quarters": [s for s, _ in quarter_sums(n)]} for r, n in zip(stream, per_trace)])
        summary = {"stream": snakemake.wildcards.stream, **summarise(per_trace)}
        write_json(snakemake.output.summary, summary)
        print(summary)


if __name__ == "__main__":
    main(snakemake)  # noqa: F821 -- injected by Snakemake's script directive
