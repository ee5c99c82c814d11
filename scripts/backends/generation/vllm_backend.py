"""The vLLM backend: vLLM's offline engine in a process of its own (``vllm_engine``), run with
the interpreter ``vllm.python`` (default: the stage's own). See ``vllm_engine`` for why."""

import contextlib
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import scripts.backends.generation.vllm_engine as vllm_engine
from scripts.backends.generation.base import Sample, TraceTokens, encode_completions, stop_token_ids
from scripts.backends.models import context_length, load_tokenizer
from scripts.infrastructure.stage_log import StageError

REPO = Path(__file__).resolve().parents[3]


class VLLMBackend:
    """``vllm`` is the config's ``vllm`` block (dtype, memory, parallelism, interpreter)."""

    def __init__(
        self,
        student: dict,
        adapter: str | None = None,
        batch_size: int = 64,
        vllm: dict | None = None,
        gpu_dtype: str = "bfloat16",
    ):
        if not vllm:
            raise StageError("generation backend vllm needs the config's `vllm` block")
        self.tokenizer = load_tokenizer(student)
        self.student, self.adapter, self.engine = student, adapter, vllm
        self.stop = stop_token_ids(self.tokenizer, student)

    @contextlib.contextmanager
    def _run(self, request: dict, result_name: str, seed: int = 0):
        """Run the engine on ``request`` and yield its result file, in a scratch folder that is
        removed afterwards."""
        with tempfile.TemporaryDirectory(prefix="vllm_engine_") as scratch:
            yield self._engine(request, Path(scratch), result_name, seed)

    def _engine(self, request: dict, work: Path, result_name: str, seed: int) -> Path:
        python = self.engine.get("python") or sys.executable
        request = {
            **request,
            "model": self.student["path"],
            "revision": self.student.get("revision"),
            "adapter": self.adapter,
            "engine": self.engine,
            "seed": seed,
        }
        (work / "request.json").write_text(json.dumps(request), encoding="utf-8")
        result = work / result_name
        out = sys.stdout if _has_fd(sys.stdout) else None  # the job's log, when there is one
        # The stage's working directory (model paths are relative to it); the project on the path.
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
        try:
            done = subprocess.run(
                [python, "-m", vllm_engine.__name__, str(work / "request.json"), str(result)],
                stdout=out,
                stderr=subprocess.STDOUT if out else None,
                env=env,
            )
        except OSError as e:
            raise StageError(
                f"cannot run the vLLM engine's interpreter {python!r} (config key vllm.python): {e}"
            ) from e
        timing = Path(f"{result}.timing.json")  # written after the complete result
        if not timing.exists():
            raise StageError(
                f"the vLLM engine ({python} -m {vllm_engine.__name__}) failed with exit code "
                f"{done.returncode}; its output is above in this log. Is vLLM installed for "
                f"that interpreter (config key vllm.python)?"
            )
        if done.returncode != 0:
            print(
                f"warning: the vLLM engine exited with code {done.returncode} after writing its complete "
                f"result (a crash in its shutdown); the result is used",
                flush=True,
            )
        self.last_timing = json.loads(timing.read_text())
        return result

    def sample(
        self, prompts: list[str], n: int, temperature: float, max_new_tokens: int, seed: int, desc: str = "sampling"
    ) -> list[list[Sample]]:
        ids = [self.tokenizer(p)["input_ids"] for p in prompts]
        print(f"{desc}: {len(prompts)} prompts x {n} through vLLM", flush=True)
        request = {
            "task": "sample",
            "prompts": ids,
            "n": n,
            "temperature": temperature,
            "max_new_tokens": max_new_tokens,
            "stop_token_ids": self.stop,
        }
        with self._run(request, "samples.jsonl", seed) as result, open(result, encoding="utf-8") as f:
            rows = [[Sample(**s) for s in json.loads(line)] for line in f]
        if len(rows) != len(prompts):
            raise StageError(f"the vLLM engine returned {len(rows)} rows for {len(prompts)} prompts")
        return rows

    def context_length(self) -> int:
        """Longest sequence the engine takes: ``vllm.max_model_len``, else the model's own."""
        return self.engine.get("max_model_len") or context_length(self.student)

    def score(self, prompts: list[str], completions: list[str]) -> list[TraceTokens]:
        """The same as the transformers backend's ``score``, from vLLM's prompt log-probabilities
        (``prompt_logprobs=0``), in one engine pass over every trace."""
        import numpy as np

        encoded = encode_completions(self.tokenizer, prompts, completions, self.context_length())
        request = {
            "task": "score",
            "sequences": [full for full, *_ in encoded],
            "starts": [start for _, start, *_ in encoded],
        }
        with self._run(request, "scores.npz") as result, np.load(result) as data:
            bounds = np.cumsum(data["counts"])[:-1]
            scored = list(zip(np.split(data["nll"], bounds), np.split(data["rank"], bounds)))
        return [
            TraceTokens(
                ids=np.asarray(full[start:], dtype=np.int64), nll=nll, rank=rank, truncated=truncated, spans=spans
            )
            for (full, start, truncated, spans), (nll, rank) in zip(encoded, scored)
        ]


def _has_fd(stream) -> bool:
    try:
        stream.flush()
        stream.fileno()
        return True
    except (AttributeError, OSError, ValueError):
        return False
