"""Sampling from the student, behind one small interface.

``backend(name, student, adapter=None)`` returns an object with
``sample(prompts, n, temperature, max_new_tokens, seed) -> list[list[Sample]]``.
Backends: ``transformers`` (the CPU default: batched ``generate`` with the KV cache).
A vLLM backend registers itself in ``BACKENDS`` the same way.
"""


from dataclasses import asdict, dataclass

from tqdm import tqdm


@dataclass(frozen=True)
class Sample:
    text: str
    finish_reason: str  # "stop": the model ended it (EOS); "length": cut at max_new_tokens
    prompt_tokens: int
    completion_tokens: int

    def to_json(self) -> dict:
        return asdict(self)


class TransformersBackend:
    def __init__(self, student: dict, adapter: str | None = None, batch_size: int = 64):
        from scripts.student import load_student

        self.model, self.tokenizer = load_student(student, adapter=adapter)
        self.model.eval()
        self.tokenizer.padding_side = "left"
        self.batch_size = batch_size

    def sample(self, prompts: list[str], n: int, temperature: float, max_new_tokens: int,
               seed: int, desc: str = "sampling") -> list[list[Sample]]:
        import torch

        eos = self.tokenizer.eos_token_id
        greedy = temperature == 0
        per_batch = max(1, self.batch_size // n)
        out: list[list[Sample]] = []
        for b in tqdm(range(0, len(prompts), per_batch), desc=desc, mininterval=2):
            chunk = prompts[b:b + per_batch]
            # One generator seed per batch start: the same config gives the same samples.
            torch.manual_seed(seed * 1_000_003 + b)
            enc = self.tokenizer(chunk, return_tensors="pt", padding=True)
            with torch.inference_mode():
                gen = self.model.generate(
                    **enc, do_sample=not greedy, temperature=None if greedy else temperature,
                    top_p=None, top_k=None, num_return_sequences=1 if greedy else n,
                    max_new_tokens=max_new_tokens, eos_token_id=eos, pad_token_id=self.tokenizer.pad_token_id,
                )
            if greedy:  # n greedy samples are n copies of one
                gen = gen.repeat_interleave(n, dim=0)
            new = gen[:, enc["input_ids"].shape[1]:]
            prompt_lens = enc["attention_mask"].sum(dim=1).tolist()
            for i in range(len(chunk)):
                row = []
                for j in range(n):
                    ids = new[i * n + j].tolist()
                    stopped = eos in ids
                    ids = ids[:ids.index(eos)] if stopped else ids
                    row.append(Sample(self.tokenizer.decode(ids, skip_special_tokens=True),
                                      "stop" if stopped else "length", prompt_lens[i],
                                      len(ids) + (1 if stopped else 0)))
                out.append(row)
        return out


BACKENDS = {"transformers": TransformersBackend}


def backend(name: str, student: dict, adapter: str | None = None, **options):
    if name not in BACKENDS:
        raise ValueError(f"unknown generation backend {name!r}; available: {sorted(BACKENDS)}")
    return BACKENDS[name](student, adapter=adapter, **options)
