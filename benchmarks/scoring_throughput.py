"""Benchmark: tokens per second of the student's forward pass (perplexity, low-probability
fraction, RSR: the generation backend's score and scripts/analysis/adaptation_cost.py) and of
each learned reward-model backend (scripts/backends/rewards/learned.py), batched against one at
a time.

    python benchmarks/scoring_throughput.py                   # student-sized models, 256 traces
    python benchmarks/scoring_throughput.py --traces 64 --batch-sizes 1 16

Everything is built offline and randomly initialised (throughput does not depend on training):
a byte-level BPE tokenizer like the built-in student's, a Qwen2 student of the embedded
default's shape, and reward models of the same body (a sequence classifier, the Qwen2.5-Math
outcome head, the Qwen2.5-Math process head). The traces are the organism's native solutions.
Tokens counted: completion tokens for the student; whole rendered conversations for rewards."""

import argparse
import os
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

TEMPLATE = "Problem: {problem}\nSolution:\n"
CHAT = "{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}"


def build(folder: Path, hidden: int, layers: int):
    """(tokenizer folder, student, reward model folders by backend) under ``folder``."""
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM, Qwen2ForSequenceClassification

    from scripts.backends.rewards.learned import Qwen2MathScoreModel
    from scripts.organism import word_problems as wp
    from scripts.organism.student import train_tokenizer

    rng = random.Random(0)
    texts = []
    for i in range(2000):
        g = wp.sample_graph(rng, rng.randint(2, 4), 99)
        texts.append(TEMPLATE.format(problem=wp.problem_text(g)) + wp.native_solution(g, random.Random(i)))
    tok = train_tokenizer(texts, 512)
    tok.add_special_tokens({"additional_special_tokens": ["<extra_0>"]})
    tok.chat_template = CHAT

    def config(labels=1):
        return Qwen2Config(
            vocab_size=len(tok),
            hidden_size=hidden,
            intermediate_size=4 * hidden,
            num_hidden_layers=layers,
            num_attention_heads=4,
            num_key_value_heads=2,
            max_position_embeddings=1024,
            pad_token_id=tok.pad_token_id,
            eos_token_id=tok.eos_token_id,
            bos_token_id=None,
            num_labels=labels,
        )

    torch.manual_seed(0)
    student = Qwen2ForCausalLM(config())
    folders = {}
    for backend, model in (
        ("sequence_classifier", Qwen2ForSequenceClassification(config())),
        ("outcome_reward", Qwen2MathScoreModel(config(1))),
        ("process_reward", Qwen2MathScoreModel(config(2))),
    ):
        folders[backend] = str(folder / backend)
        model.save_pretrained(folders[backend])
        tok.save_pretrained(folders[backend])
    print(
        f"models: hidden {hidden}, {layers} layers, {sum(p.numel() for p in student.parameters()):,} "
        f"parameters (student), vocabulary {len(tok)}"
    )
    student.save_pretrained(folder / "student")
    tok.save_pretrained(folder / "student")
    return tok, {"name": "student", "path": str(folder / "student"), "revision": None}, folders


def traces(n: int) -> list[dict]:
    from scripts.organism import word_problems as wp

    rng = random.Random(1)
    out = []
    for i in range(n):
        g = wp.sample_graph(rng, rng.randint(2, 4), 99)
        out.append({"id": str(i), "problem": wp.problem_text(g), "trace": wp.native_solution(g, random.Random(i))})
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--traces", type=int, default=256)
    ap.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 8, 64])
    ap.add_argument("--hidden", type=int, default=64)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    args = ap.parse_args()

    import torch

    from scripts.backends.generation import generator
    from scripts.backends.rewards import reward_model

    if args.threads:
        torch.set_num_threads(args.threads)
    items = traces(args.traces)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tok, student, folders = build(Path(tmp), args.hidden, args.layers)
        prompts = [TEMPLATE.format(problem=it["problem"]) for it in items]
        for bs in args.batch_sizes:
            start = time.perf_counter()
            scorer = generator("transformers", student, batch_size=bs, gpu_dtype="float32")
            start = time.perf_counter()  # the forward passes, not the loading
            out = scorer.score(prompts, [it["trace"] for it in items])
            seconds = time.perf_counter() - start
            rows.append(("student forward pass (adaptation_cost)", bs, sum(len(t.ids) for t in out), seconds))
        for backend, folder in folders.items():
            for bs in args.batch_sizes:
                spec = {"backend": backend, "model": folder, "batch_size": bs}
                if backend == "process_reward":
                    spec["step_split"] = "\n"
                rm = reward_model(spec, backend)
                rm.score(items)
                rows.append((f"reward {backend}", bs, rm.info["tokens"], rm.info["seconds"]))
    print(f"\n{args.traces} traces, torch threads {torch.get_num_threads()}")
    print(f"{'what':42s} {'batch':>5s} {'tokens':>8s} {'seconds':>8s} {'tokens/s':>10s}")
    for what, bs, tokens, seconds in rows:
        print(f"{what:42s} {bs:5d} {tokens:8d} {seconds:8.2f} {tokens / seconds:10.0f}")


if __name__ == "__main__":
    main()
