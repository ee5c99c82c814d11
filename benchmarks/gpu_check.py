"""GPU check: one SFT step and one DFT step of a Qwen2.5-Math-1.5B-shaped student through the
project's own training code (`scripts/training/trainer.py`'s `fit`, the code the `fine_tune` rule runs),
asserting a finite loss, and printing training tokens/s and peak GPU memory.

    python benchmarks/gpu_check.py                          # any CUDA machine: the 1.5B shape, bf16
    python benchmarks/gpu_check.py --weights-dtype float32  # weights as fine_tune loads them today
    python benchmarks/gpu_check.py --micro-batch-size 8     # does a larger micro-batch still fit?
    python benchmarks/gpu_check.py --tiny                   # the same code path, shrunk, on a CPU

Then the cluster path (issue 15), each through the code the `fine_tune` stage runs
(`scripts/training/launch.py` and `worker.py`), in bf16 on CUDA:

1. a real pretrained model (SmolLM2-135M-Instruct, `make smollm2`; skipped when its folder is
   missing): greedy answers through the transformers backend, ending at `<|im_end|>`, and a
   short LoRA SFT run saved and reloaded;
2. sharded training: the same run in 1 process and in N (every visible GPU; FSDP full shard),
   at the same effective batch: the largest difference of the logged losses;
3. preemption: the N-process run signalled (SIGTERM) mid-training, saved, rerun from its
   checkpoint: its losses against the uninterrupted run's.

`--tiny` runs all of it on a CPU (2 gloo processes; accelerate runs them as DDP). On GPUs bf16
kernels are not bit-exact across process counts: the differences are printed, and checked
against a loose bound (`--loss-tolerance`).

Nothing is downloaded: the model is randomly initialised from a Qwen2Config with the real
Qwen2.5-Math-1.5B dimensions, and the tokenizer is a small byte-level BPE trained here with the
built-in student's tokenizer builder. Every sequence is at least --seq-len tokens long, so each
is truncated to exactly --seq-len (the worst case of `training.hparams.max_length`); one
optimiser step sees micro-batch x accumulation sequences (--steps: how many steps).

tokens/s counts the tokens of every forward pass from the first forward to the end of `fit`
(trainer set-up and tokenisation excluded); one step includes CUDA warm-up, so a long run is
faster. Peak memory is torch's peak allocation during that step.
"""

import argparse
import math
import os
import random
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))  # pretrained_model: the SmolLM2 prompt of the tests

# Qwen/Qwen2.5-Math-1.5B's config.json (hidden 1536, 28 layers, 12 heads, 2 KV heads, MLP 8960,
# vocabulary 151936, tied embeddings, 4096 positions, rope_theta 10000).
QWEN25_MATH_1_5B = dict(
    vocab_size=151936,
    hidden_size=1536,
    intermediate_size=8960,
    num_hidden_layers=28,
    num_attention_heads=12,
    num_key_value_heads=2,
    max_position_embeddings=4096,
    rope_theta=10000.0,
    tie_word_embeddings=True,
)
TINY = dict(
    vocab_size=2048,
    hidden_size=64,
    intermediate_size=128,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    max_position_embeddings=512,
    rope_theta=10000.0,
    tie_word_embeddings=True,
)


def synthetic_text(rng: random.Random, n_steps: int) -> str:
    """Solution-like text with LaTeX and digits, so the BPE sees the kinds of tokens traces hold."""
    ops = [("+", lambda a, b: a + b), ("-", lambda a, b: a - b), ("\\times", lambda a, b: a * b)]
    lines = []
    for i in range(n_steps):
        a, b = rng.randint(2, 99), rng.randint(2, 99)
        sym, f = rng.choice(ops)
        lines.append(f"Step {i + 1}: we compute \\( {a} {sym} {b} = {f(a, b)} \\), so the running total changes.")
    return "\n\n".join(lines)


def examples_of_length(tokenizer, n: int, seq_len: int, seed: int) -> list[dict]:
    """n prompt/completion pairs whose prompt + completion is at least seq_len tokens."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        prompt = f"Problem {i}: a shop starts with {rng.randint(10, 99)} apples. What is left?\nSolution:\n"
        steps = 8
        completion = synthetic_text(rng, steps)
        while len(tokenizer(prompt + completion)["input_ids"]) < seq_len:
            steps *= 2
            completion = synthetic_text(rng, steps)
        out.append({"prompt": prompt, "completion": completion + "\n\nThe answer is \\boxed{42}."})
    return out


class Meter:
    """Counts the tokens of every forward pass and the time from the first one."""

    def __init__(self, model, sync):
        self.tokens, self.start, self.sync = 0, None, sync
        self.handle = model.register_forward_pre_hook(self.hook, with_kwargs=True)

    def hook(self, module, args, kwargs):
        if self.start is None:
            self.sync()
            self.start = time.perf_counter()
        mask = kwargs.get("attention_mask")
        ids = kwargs.get("input_ids", args[0] if args else None)
        self.tokens += int(mask.sum()) if mask is not None else int(ids.numel())

    def stop(self) -> float:
        self.sync()
        self.handle.remove()
        return time.perf_counter() - self.start


def train_steps(objective: str, arch: dict, tokenizer, examples, hp, dtype, device, seed) -> dict:
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    from scripts.training.trainer import fit

    torch.manual_seed(seed)
    config = Qwen2Config(
        **arch, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id, bos_token_id=None
    )
    with torch.device(device):
        model = Qwen2ForCausalLM(config).to(dtype)
    params = sum(p.numel() for p in model.parameters())
    probe = model.model.layers[0].mlp.down_proj.weight
    before = probe.detach().clone()
    cuda = device == "cuda"
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    if cuda:
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    meter = Meter(model, sync)
    with tempfile.TemporaryDirectory() as scratch:
        model, curve = fit(model, tokenizer, examples, hp, objective, scratch, seed)
    seconds = meter.stop()
    changed = float((probe.detach() != before).float().mean())
    result = {
        "objective": objective,
        "parameters": params,
        "steps": len(curve),
        "loss": curve[-1]["loss"] if curve else math.nan,
        "tokens": meter.tokens,
        "seconds": seconds,
        "tokens_per_s": meter.tokens / seconds,
        "weights_changed": changed,
        "device": str(next(model.parameters()).device),
        "dtype": str(next(model.parameters()).dtype),
    }
    if cuda:
        result["peak_allocated_gib"] = torch.cuda.max_memory_allocated() / 2**30
        result["peak_reserved_gib"] = torch.cuda.max_memory_reserved() / 2**30
    del model, probe, before
    if cuda:
        torch.cuda.empty_cache()
    return result


# --- the cluster path: pretrained model, sharded training, preemption ------------------------------


def run_spec(work: Path, student: dict, stream: Path, world: int, method: str, hp: dict, checkpoint_steps=0) -> dict:
    from scripts.training import launch

    out = work / f"{method}-{world}"
    out.mkdir(parents=True, exist_ok=True)
    return {
        "student": student,
        "stream": str(stream),
        "hp": hp,
        "objective": "sft",
        "seed": 0,
        "method": method,
        "lora": {"r": 8, "alpha": 16, "dropout": 0.0, "target_modules": ["q_proj", "v_proj"]},
        "eos_token": (student.get("stop_tokens") or [None])[0],
        # N processes shard (FSDP) whenever N > 1; a single GPU runs FSDP too with --fsdp-alone
        "strategy": launch.strategy(method, world),
        "world_size": world,
        "checkpoint_steps": checkpoint_steps,
        "state_dir": str(out / "state"),
        "outputs": {
            "checkpoint": str(out / "checkpoint"),
            "curve": str(out / "curve.csv"),
            "summary": str(out / "train.json"),
        },
    }


def start_run(spec: dict):
    import subprocess

    from scripts.training import launch

    stamp = str(launch.prepare_state(spec))
    world = spec["world_size"]
    cmd = [sys.executable, "-m", launch.WORKER, stamp] if world == 1 else launch.command(stamp, world, 1)
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "TORCHELASTIC_SIGNALS_TO_HANDLE": "SIGINT,SIGHUP,SIGQUIT",
    }
    log = open(Path(spec["state_dir"]).parent / "log.txt", "a")
    return subprocess.Popen(cmd, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def finished_run(spec: dict) -> dict:
    proc = start_run(spec)
    code = proc.wait()
    log = (Path(spec["state_dir"]).parent / "log.txt").read_text()
    assert code == 0, f"training run failed ({code}):\n{log[-4000:]}"
    import json

    losses = [float(line.split(",")[1]) for line in Path(spec["outputs"]["curve"]).read_text().splitlines()[1:]]
    return {"losses": losses, "summary": json.loads(Path(spec["outputs"]["summary"]).read_text())}


def cluster_checks(args, tokenizer, examples, tmp: Path) -> list[str]:
    """Items 1-3 of the docstring; returns the lines to print."""
    import json
    import signal

    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    from scripts.backends.generation import generator

    lines = []
    cuda = torch.cuda.is_available()
    world = torch.cuda.device_count() if cuda else 2
    stream = tmp / "stream.jsonl"
    stream.write_text(
        "".join(
            json.dumps({"id": f"p{i}", "problem": e["prompt"], "trace": e["completion"]}) + "\n"
            for i, e in enumerate(examples)
        )
    )
    # A student folder: the check's model shape, random weights (no download)
    arch = TINY if args.tiny else QWEN25_MATH_1_5B
    torch.manual_seed(args.seed)
    config = Qwen2Config(
        **arch, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id, bos_token_id=None
    )
    Qwen2ForCausalLM(config).save_pretrained(tmp / "student")
    tokenizer.save_pretrained(tmp / "student")
    student = {"name": "check", "path": str(tmp / "student"), "revision": None, "prompt_template": "{problem}"}
    micro = 1 if not args.tiny else 2
    hp = {
        "lr": 5.0e-5,
        "batch_size": micro * world * 2,
        "micro_batch_size": micro,
        "epochs": 1,
        "max_steps": args.cluster_steps,
        "lr_scheduler": "constant",
        "warmup_ratio": 0.0,
        "weight_decay": 0.0,
        "max_length": min(args.seq_len or 128, 512),
        "bf16": True,
    }
    need = hp["batch_size"] * args.cluster_steps
    if len(examples) < need:
        raise SystemExit(f"gpu_check: {len(examples)} examples, the sharded check needs {need} (raise --steps)")

    # 1. the pretrained model
    folder = Path(args.pretrained)
    if (folder / "config.json").exists():
        from pretrained_model import PROMPT_TEMPLATE, student_record

        smol = student_record(folder)
        questions = [
            "What is 2 + 3? Reply with just the number.",
            "Sara had 15 stickers and gave away 4. How many are left? Answer briefly.",
        ]
        out = generator("transformers", smol, batch_size=8).sample(
            [PROMPT_TEMPLATE.format(problem=q) for q in questions], 1, 0.0, 40, seed=0
        )
        assert any(r[0].finish_reason == "stop" for r in out), out
        lines.append(
            f"1. SmolLM2 greedy ({'bf16 on GPU' if cuda else 'float32 on CPU'}): "
            + " | ".join(repr(r[0].text) for r in out)
        )
        lora = run_spec(
            tmp / "smol", smol, stream, 1, "lora", {**hp, "batch_size": 2, "micro_batch_size": 2, "max_steps": 2}
        )
        done = finished_run(lora)
        again = generator("transformers", smol, adapter=lora["outputs"]["checkpoint"], batch_size=8).sample(
            [PROMPT_TEMPLATE.format(problem=questions[0])], 1, 0.0, 20, seed=0
        )
        lines.append(
            f"1. SmolLM2 LoRA SFT: {done['summary']['steps']} steps, final loss {done['losses'][-1]:.4f}; "
            f"reloaded: {again[0][0].text!r}"
        )
    else:
        lines.append(f"1. SmolLM2: skipped ({folder} missing; `make smollm2` makes it)")

    # 2. sharded training vs one process at the same effective batch
    one = finished_run(run_spec(tmp / "one", student, stream, 1, "full", hp))
    sharded_spec = run_spec(tmp / "sharded", student, stream, world, "full", hp)
    if world == 1:  # one GPU: shard over it alone, to run the FSDP code path
        sharded_spec["strategy"] = "fsdp"
    sharded = finished_run(sharded_spec)
    diff = max(abs(a - b) for a, b in zip(one["losses"], sharded["losses"]))
    lines.append(
        f"2. {sharded['summary']['strategy']} on {world} process(es) vs 1 process, {len(one['losses'])} steps: "
        f"largest loss difference {diff:.3g} (losses {one['losses'][0]:.4f} .. {one['losses'][-1]:.4f})"
    )
    assert diff <= args.loss_tolerance * max(1.0, abs(one["losses"][0])), f"sharded losses differ by {diff}"

    # 3. preemption: SIGTERM mid-training, rerun from the checkpoint
    spec = run_spec(tmp / "preempted", student, stream, world, "full", hp)
    spec["strategy"] = sharded_spec["strategy"]
    proc = start_run(spec)
    log = Path(spec["state_dir"]).parent / "log.txt"
    deadline = time.monotonic() + 600
    while "'loss'" not in log.read_text():
        assert proc.poll() is None and time.monotonic() < deadline, log.read_text()[-4000:]
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGTERM)
    code = proc.wait()
    stopped = json.loads((Path(spec["state_dir"]) / "preempted.json").read_text())
    resumed = finished_run(spec)
    diff = max(abs(a - b) for a, b in zip(resumed["losses"], sharded["losses"]))
    lines.append(
        f"3. SIGTERM at step {stopped['step']} (exit {code}); resumed from step {resumed['summary']['resumed_from']}: "
        f"largest loss difference to the uninterrupted run {diff:.3g}"
    )
    assert resumed["summary"]["resumed_from"] == stopped["step"]
    assert diff <= args.loss_tolerance * max(1.0, abs(one["losses"][0])), f"resumed losses differ by {diff}"
    return lines


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tiny", action="store_true", help="a ~200K-parameter model and short sequences: runs on a CPU")
    ap.add_argument("--micro-batch-size", type=int, default=None, help="sequences per forward pass (default 4; tiny 2)")
    ap.add_argument("--accumulation", type=int, default=2, help="micro-batches per optimiser step")
    ap.add_argument("--seq-len", type=int, default=None, help="tokens per sequence (default 2048; tiny 128)")
    ap.add_argument(
        "--weights-dtype",
        choices=["bfloat16", "float32"],
        default="bfloat16",
        help="model weights on the GPU (fine_tune's load_student loads float32 today); CPU: float32",
    )
    ap.add_argument("--steps", type=int, default=1, help="optimiser steps per objective (more: a steadier tokens/s)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--pretrained",
        default=str(REPO / ".cache" / "SmolLM2-135M-Instruct"),
        help="SmolLM2 folder for check 1 (make smollm2)",
    )
    ap.add_argument("--cluster-steps", type=int, default=4, help="optimiser steps of checks 2 and 3")
    ap.add_argument("--loss-tolerance", type=float, default=0.05, help="checks 2-3: largest loss difference, relative")
    ap.add_argument("--no-cluster", action="store_true", help="only the one-step SFT/DFT check")
    args = ap.parse_args()

    import torch
    import transformers
    import trl

    from scripts.organism.student import train_tokenizer

    cuda = torch.cuda.is_available()
    if not cuda and not args.tiny:
        print("gpu_check: no CUDA device; the full-size check needs a GPU (use --tiny on a CPU)", file=sys.stderr)
        return 2
    device = "cuda" if cuda else "cpu"
    dtype = getattr(torch, args.weights_dtype) if cuda else torch.float32
    arch = TINY if args.tiny else QWEN25_MATH_1_5B
    micro = args.micro_batch_size or (2 if args.tiny else 4)
    seq_len = args.seq_len or (128 if args.tiny else 2048)
    if seq_len > arch["max_position_embeddings"]:
        ap.error(f"--seq-len {seq_len} exceeds the model's {arch['max_position_embeddings']} positions")
    batch = micro * args.accumulation

    rng = random.Random(args.seed)
    tokenizer = train_tokenizer([synthetic_text(rng, 20) for _ in range(200)], vocab_size=512)
    examples = examples_of_length(tokenizer, batch * args.steps, seq_len, args.seed)
    # One epoch of `steps` optimiser steps over `batch` sequences each; no warmup, so the first
    # step already moves the weights.
    hp = {
        "lr": 5.0e-5,
        "batch_size": batch,
        "micro_batch_size": micro,
        "epochs": 1,
        "max_steps": args.steps,
        "lr_scheduler": "cosine",
        "warmup_ratio": 0.0,
        "weight_decay": 0.0,
        "max_length": seq_len,
        "bf16": True,
    }

    print(
        f"device: {torch.cuda.get_device_name() if cuda else 'cpu'}; torch {torch.__version__}, "
        f"transformers {transformers.__version__}, trl {trl.__version__}"
    )
    print(
        f"model: {'tiny' if args.tiny else 'Qwen2.5-Math-1.5B shape'} (random init), weights {dtype}; "
        f"{args.steps} step(s) of {batch} sequences x {seq_len} tokens "
        f"(micro-batch {micro} x accumulation {args.accumulation})"
    )
    results = [train_steps(obj, arch, tokenizer, examples, hp, dtype, device, args.seed) for obj in ("sft", "dft")]
    for r in results:
        mem = (
            f"peak GPU memory {r['peak_allocated_gib']:.1f} GiB allocated, {r['peak_reserved_gib']:.1f} GiB reserved"
            if cuda
            else ""
        )
        print(
            f"{r['objective'].upper()}: {r['parameters']:,} parameters on {r['device']} ({r['dtype']}), "
            f"{r['steps']} step(s), final loss {r['loss']:.6g}, {r['tokens']:,} tokens in {r['seconds']:.2f} s = "
            f"{r['tokens_per_s']:,.0f} training tokens/s; weights changed: {100 * r['weights_changed']:.1f}% "
            f"of a probe matrix{'; ' + mem if mem else ''}"
        )
    if not cuda:
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
        print(f"peak resident memory of this process: {peak:.2f} GiB")

    sft, dft = results
    for r in results:
        assert r["steps"] == args.steps, f"{r['objective']}: expected {args.steps} optimiser step(s), got {r['steps']}"
        assert math.isfinite(r["loss"]), f"{r['objective']}: loss is not finite ({r['loss']})"
        assert r["weights_changed"] > 0, f"{r['objective']}: the step left the weights unchanged"
        assert r["tokens"] >= args.steps * batch * seq_len, (
            f"{r['objective']}: {r['tokens']} tokens, expected {args.steps} x {batch} x {seq_len}"
        )
    # DFT weights each token's cross-entropy by its own probability (< 1): from the same
    # initialisation and data its loss is below SFT's; equal losses would mean DFT did not run.
    # (Compared at the last step; from a random init both stay far apart for a few steps.)
    assert dft["loss"] < sft["loss"], f"DFT loss {dft['loss']} is not below SFT loss {sft['loss']}"
    if not args.no_cluster:
        cluster = examples_of_length(tokenizer, 64, min(seq_len, 128), args.seed + 1)
        with tempfile.TemporaryDirectory() as tmp:
            for line in cluster_checks(args, tokenizer, cluster, Path(tmp)):
                print(line)
    print("gpu_check: OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
