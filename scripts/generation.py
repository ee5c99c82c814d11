"""Sampling from the student, behind one small interface.

``backend(name, student, adapter=None, batch_size=64, vllm=None)`` returns an object with
``sample(prompts, n, temperature, max_new_tokens, seed) -> list[list[Sample]]``:

- ``transformers`` (the CPU default): batched ``generate`` with the KV cache, on the GPU in
  bf16 when there is one;
- ``vllm``: vLLM's offline engine (``scripts.vllm_engine``, run in a process of its own with
  the interpreter ``vllm.python``), which also scores sequences (``score``: prompt
  log-probabilities, for the adaptation-cost stage).

Both stop at the tokenizer's EOS and at the student's ``stop_tokens`` (e.g. ``<|im_end|>`` for
a chat-templated base model), and see the same token ids (prompts are tokenized here).
"""


import contextlib
import json
import os
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

from tqdm import tqdm

from scripts import vllm_engine
from scripts.stage import StageError

REPO = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Sample:
    text: str
    finish_reason: str  # "stop": the model ended it (EOS / stop token); "length": cut at max_new_tokens
    prompt_tokens: int
    completion_tokens: int

    def to_json(self) -> dict:
        return asdict(self)


def stop_token_ids(tokenizer, student: dict) -> list[int]:
    """The tokenizer's EOS, then the student's extra stop tokens (each must be one token)."""
    ids = [tokenizer.eos_token_id]
    for token in student.get("stop_tokens") or []:
        tid = tokenizer.convert_tokens_to_ids(token)
        if tid is None or tid == tokenizer.unk_token_id:
            raise StageError(f"stop token {token!r} of student {student.get('name')!r} is not one token "
                             f"of its tokenizer ({student['path']})")
        ids.append(tid)
    return list(dict.fromkeys(ids))


class TransformersBackend:
    def __init__(self, student: dict, adapter: str | None = None, batch_size: int = 64):
        import torch

        from scripts.student import load_student

        self.model, self.tokenizer = load_student(student, adapter=adapter)
        if torch.cuda.is_available():
            self.model.to("cuda", dtype=torch.bfloat16)
        self.model.eval()
        self.tokenizer.padding_side = "left"
        self.batch_size = batch_size
        self.stop = stop_token_ids(self.tokenizer, student)

    def sample(self, prompts: list[str], n: int, temperature: float, max_new_tokens: int,
               seed: int, desc: str = "sampling") -> list[list[Sample]]:
        import torch

        greedy = temperature == 0
        per_batch = max(1, self.batch_size // n)
        out: list[list[Sample]] = []
        for b in tqdm(range(0, len(prompts), per_batch), desc=desc, mininterval=2):
            chunk = prompts[b:b + per_batch]
            # One generator seed per batch start: the same config gives the same samples.
            torch.manual_seed(seed * 1_000_003 + b)
            enc = self.tokenizer(chunk, return_tensors="pt", padding=True).to(self.model.device)
            with torch.inference_mode():
                gen = self.model.generate(
                    **enc, do_sample=not greedy, temperature=None if greedy else temperature,
                    top_p=None, top_k=None, num_return_sequences=1 if greedy else n,
                    max_new_tokens=max_new_tokens, eos_token_id=self.stop, pad_token_id=self.tokenizer.pad_token_id,
                )
            if greedy:  # n greedy samples are n copies of one
                gen = gen.repeat_interleave(n, dim=0)
            new = gen[:, enc["input_ids"].shape[1]:].cpu()
            prompt_lens = enc["attention_mask"].sum(dim=1).tolist()
            for i in range(len(chunk)):
                row = []
                for j in range(n):
                    ids = new[i * n + j].tolist()
                    end = next((t for t, tok in enumerate(ids) if tok in self.stop), None)
                    ids = ids if end is None else ids[:end]
                    row.append(Sample(self.tokenizer.decode(ids, skip_special_tokens=True),
                                      "length" if end is None else "stop", prompt_lens[i],
                                      len(ids) + (end is not None)))
                out.append(row)
        return out


class VLLMBackend:
    """vLLM's offline engine; ``engine`` is the config's ``vllm`` block."""

    def __init__(self, student: dict, adapter: str | None = None, engine: dict | None = None):
        from scripts.student import load_tokenizer

        if not engine:
            raise StageError("generation backend vllm needs the config's `vllm` block")
        self.tokenizer = load_tokenizer(student)
        self.student, self.adapter, self.engine = student, adapter, engine
        self.stop = stop_token_ids(self.tokenizer, student)

    @contextlib.contextmanager
    def _run(self, request: dict, result_name: str, seed: int = 0):
        """Run the engine on ``request`` and yield its result file, in a scratch folder that is
        removed afterwards."""
        with tempfile.TemporaryDirectory(prefix="vllm_engine_") as scratch:
            yield self._engine(request, Path(scratch), result_name, seed)

    def _engine(self, request: dict, work: Path, result_name: str, seed: int) -> Path:
        python = self.engine.get("python") or sys.executable
        request = {**request, "model": self.student["path"], "revision": self.student.get("revision"),
                   "adapter": self.adapter, "engine": self.engine, "seed": seed}
        (work / "request.json").write_text(json.dumps(request), encoding="utf-8")
        result = work / result_name
        out = sys.stdout if _has_fd(sys.stdout) else None  # the job's log, when there is one
        # The stage's working directory (model paths are relative to it); the project on the path.
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
        try:
            done = subprocess.run([python, "-m", vllm_engine.__name__, str(work / "request.json"), str(result)],
                                  stdout=out, stderr=subprocess.STDOUT if out else None, env=env)
        except OSError as e:
            raise StageError(f"cannot run the vLLM engine's interpreter {python!r} (config key vllm.python): {e}") from e
        timing = Path(f"{result}.timing.json")  # written after the complete result
        if not timing.exists():
            raise StageError(f"the vLLM engine ({python} -m scripts.vllm_engine) failed with exit code "
                             f"{done.returncode}; its output is above in this log. Is vLLM installed for "
                             f"that interpreter (config key vllm.python)?")
        if done.returncode != 0:
            print(f"warning: the vLLM engine exited with code {done.returncode} after writing its complete "
                  f"result (a crash in its shutdown); the result is used", flush=True)
        self.last_timing = json.loads(timing.read_text())
        return result

    def sample(self, prompts: list[str], n: int, temperature: float, max_new_tokens: int,
               seed: int, desc: str = "sampling") -> list[list[Sample]]:
        ids = [self.tokenizer(p)["input_ids"] for p in prompts]
        print(f"{desc}: {len(prompts)} prompts x {n} through vLLM", flush=True)
        request = {"task": "sample", "prompts": ids, "n": n, "temperature": temperature,
                   "max_new_tokens": max_new_tokens, "stop_token_ids": self.stop}
        with self._run(request, "samples.jsonl", seed) as result, open(result, encoding="utf-8") as f:
            rows = [[Sample(**s) for s in json.loads(line)] for line in f]
        if len(rows) != len(prompts):
            raise StageError(f"the vLLM engine returned {len(rows)} rows for {len(prompts)} prompts")
        return rows

    def context_length(self) -> int:
        """Longest sequence the engine takes: ``vllm.max_model_len``, else the model's own."""
        if self.engine.get("max_model_len"):
            return self.engine["max_model_len"]
        from transformers import AutoConfig

        from scripts.student import pinned

        return AutoConfig.from_pretrained(self.student["path"], **pinned(self.student)).max_position_embeddings

    def score(self, sequences: list[list[int]], starts: list[int]):
        """(NLL, rank) arrays of each sequence's tokens from ``start`` on, given what precedes them."""
        import numpy as np

        with self._run({"task": "score", "sequences": sequences, "starts": starts}, "scores.npz") as result, \
                np.load(result) as data:
            bounds = np.cumsum(data["counts"])[:-1]
            return list(zip(np.split(data["nll"], bounds), np.split(data["rank"], bounds)))


def _has_fd(stream) -> bool:
    try:
        stream.flush()
        stream.fileno()
        return True
    except (AttributeError, OSError, ValueError):
        return False


def backend(name: str, student: dict, adapter: str | None = None, batch_size: int = 64,
            vllm: dict | None = None):
    if name == "transformers":
        return TransformersBackend(student, adapter=adapter, batch_size=batch_size)
    if name == "vllm":
        return VLLMBackend(student, adapter=adapter, engine=vllm)
    raise ValueError(f"unknown generation backend {name!r}; available: transformers, vllm")
