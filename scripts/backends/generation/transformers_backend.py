"""The transformers backend: batched ``generate`` with the KV cache, and one forward pass per
batch for scoring. The CPU default; on a GPU it runs in ``gpu_dtype``."""

import numpy as np
from tqdm import tqdm

from scripts.backends.generation.base import Sample, TraceTokens, encode_completions, stop_token_ids
from scripts.backends.models import load_student, on_accelerator


class TransformersBackend:
    def __init__(
        self,
        student: dict,
        adapter: str | None = None,
        batch_size: int = 64,
        vllm: dict | None = None,
        gpu_dtype: str = "bfloat16",
    ):
        import torch

        self.model, self.tokenizer = load_student(student, adapter=adapter)
        on_accelerator(self.model, getattr(torch, gpu_dtype))
        self.model.eval()
        self.batch_size = batch_size
        self.stop = stop_token_ids(self.tokenizer, student)

    def sample(
        self, prompts: list[str], n: int, temperature: float, max_new_tokens: int, seed: int, desc: str = "sampling"
    ) -> list[list[Sample]]:
        import torch

        self.tokenizer.padding_side = "left"
        greedy = temperature == 0
        per_batch = max(1, self.batch_size // n)
        out: list[list[Sample]] = []
        for b in tqdm(range(0, len(prompts), per_batch), desc=desc, mininterval=2):
            chunk = prompts[b : b + per_batch]
            # One generator seed per batch start: the same config gives the same samples.
            torch.manual_seed(seed * 1_000_003 + b)
            enc = self.tokenizer(chunk, return_tensors="pt", padding=True).to(self.model.device)
            with torch.inference_mode():
                gen = self.model.generate(
                    **enc,
                    do_sample=not greedy,
                    temperature=None if greedy else temperature,
                    top_p=None,
                    top_k=None,
                    num_return_sequences=1 if greedy else n,
                    max_new_tokens=max_new_tokens,
                    eos_token_id=self.stop,
                    pad_token_id=self.tokenizer.pad_token_id,
                )
            if greedy:  # n greedy samples are n copies of one
                gen = gen.repeat_interleave(n, dim=0)
            new = gen[:, enc["input_ids"].shape[1] :].cpu()
            prompt_lens = enc["attention_mask"].sum(dim=1).tolist()
            for i in range(len(chunk)):
                row = []
                for j in range(n):
                    ids = new[i * n + j].tolist()
                    end = next((t for t, tok in enumerate(ids) if tok in self.stop), None)
                    ids = ids if end is None else ids[:end]
                    row.append(
                        Sample(
                            self.tokenizer.decode(ids, skip_special_tokens=True),
                            "length" if end is None else "stop",
                            prompt_lens[i],
                            len(ids) + (end is not None),
                        )
                    )
                out.append(row)
        return out

    def context_length(self) -> int:
        return self.model.config.max_position_embeddings

    def score(self, prompts: list[str], completions: list[str]) -> list[TraceTokens]:
        """Each completion's token ids, NLL and rank given its prompt. Batches are sorted by
        length and right-padded, so a trace's numbers do not depend on its batch."""
        import torch

        encoded = encode_completions(self.tokenizer, prompts, completions, self.context_length())
        order = sorted(range(len(encoded)), key=lambda i: (-len(encoded[i][0]), i))
        device = next(self.model.parameters()).device
        pad = self.tokenizer.pad_token_id
        out: list = [None] * len(encoded)
        for b in tqdm(range(0, len(order), self.batch_size), desc="token NLL", mininterval=2):
            rows = order[b : b + self.batch_size]
            width = max(len(encoded[i][0]) for i in rows)
            x = torch.tensor([encoded[i][0] + [pad] * (width - len(encoded[i][0])) for i in rows])
            mask = torch.tensor([[1] * len(encoded[i][0]) + [0] * (width - len(encoded[i][0])) for i in rows])
            with torch.inference_mode():
                logits = self.model(input_ids=x.to(device), attention_mask=mask.to(device)).logits[:, :-1].float()
                target = x[:, 1:, None].to(device)
                chosen = logits.gather(-1, target)
                nll = (torch.logsumexp(logits, dim=-1) - chosen.squeeze(-1)).cpu()
                rank = ((logits > chosen).sum(dim=-1) + 1).cpu()
            for r, i in enumerate(rows):
                full, start, truncated, spans = encoded[i]
                out[i] = TraceTokens(
                    ids=np.asarray(full[start:], dtype=np.int64),
                    nll=nll[r, start - 1 : len(full) - 1].numpy().astype(np.float64),
                    rank=rank[r, start - 1 : len(full) - 1].numpy().astype(np.int64),
                    truncated=truncated,
                    spans=spans,
                )
        return out
