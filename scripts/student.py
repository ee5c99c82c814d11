"""The student (SLM). Real configs name a model id or local path with a pinned revision; the
embedded default builds its own tiny student so that the whole study runs offline on a CPU.

The built-in student is a Qwen2-architecture causal LM with a byte-level BPE tokenizer trained
with Qwen2's own normaliser and pre-tokenizer (digits split singly), so ``AutoTokenizer``
reloads it with the same ids. It is pretrained on solutions in its *native* style, with a
small model's imperfections (slips that are not carried on, errors that are), and a small
share of foreign styles, so the oracle's notation is rare but not unseen.

Every later stage reads the student through ``student.json``: ``{path, revision,
prompt_template, ...}``, and loads it with ``load_student``.
"""


import random
import tempfile
from pathlib import Path

from scripts import word_problems as wp
from scripts.archive import replayed
from scripts.records import read_json, write_json
from scripts.stage import logged
from scripts.training import fit, write_curve

EOS = "<|endoftext|>"


def pinned(student: dict) -> dict:
    """``from_pretrained`` keywords that pin a hub student to its revision (none for a folder)."""
    return {"revision": student["revision"]} if student.get("revision") else {}


def load_tokenizer(student: dict):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(student["path"], **pinned(student))


def load_student(student: dict, seed: int | None = None, adapter: str | None = None):
    """(model, tokenizer) for a ``student.json`` record; ``adapter`` is a LoRA folder."""
    import torch
    from transformers import AutoModelForCausalLM

    if seed is not None:
        torch.manual_seed(seed)
    tokenizer = load_tokenizer(student)
    model = AutoModelForCausalLM.from_pretrained(student["path"], dtype=torch.float32, **pinned(student))
    if adapter:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, adapter)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return model, tokenizer


def native_corpus(spec: dict) -> list[tuple[str, str]]:
    """(problem, solution) pairs the built-in student is pretrained on."""
    rng = random.Random(spec["seed"])
    out = []
    for _ in range(spec["corpus_size"]):
        g = wp.sample_graph(rng, rng.randint(spec["min_steps"], spec["max_steps"]), spec["max_value"])
        u = rng.random()
        if u < spec["foreign_style_fraction"] / 3:
            solution = wp.oracle_notation(wp.native_solution(g, rng))
        elif u < 2 * spec["foreign_style_fraction"] / 3:
            solution = wp.oracle_synthesis(g)
        elif u < spec["foreign_style_fraction"]:
            solution = wp.reference_solution(g)
        else:
            solution = wp.native_solution(g, rng, spec["slip_rate"], spec["carried_error_rate"])
        out.append((wp.problem_text(g), solution))
    return out


def train_tokenizer(texts: list[str], vocab_size: int):
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast
    from transformers.models.qwen2.tokenization_qwen2 import PRETOKENIZE_REGEX

    tok = Tokenizer(models.BPE())
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(PRETOKENIZE_REGEX), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=[EOS],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(texts, trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token=EOS, pad_token=EOS, unk_token=EOS)


def build_builtin_student(spec: dict, prompt_template: str, out_dir: str, seed: int) -> list[dict]:
    """Train the tokenizer, initialise a tiny Qwen2 and pretrain it; returns the loss curve."""
    import torch
    from transformers import GenerationConfig, Qwen2Config, Qwen2ForCausalLM

    corpus = native_corpus(spec)
    examples = [{"prompt": prompt_template.format(problem=p), "completion": s} for p, s in corpus]
    tokenizer = train_tokenizer([e["prompt"] + e["completion"] for e in examples], spec["vocab_size"])
    arch = spec["architecture"]
    torch.manual_seed(seed)
    config = Qwen2Config(
        vocab_size=len(tokenizer), hidden_size=arch["hidden_size"], intermediate_size=arch["intermediate_size"],
        num_hidden_layers=arch["layers"], num_attention_heads=arch["heads"], num_key_value_heads=arch["kv_heads"],
        max_position_embeddings=arch["max_position_embeddings"], tie_word_embeddings=True,
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id, bos_token_id=None,
    )
    model = Qwen2ForCausalLM(config)
    print(f"built-in student: {sum(p.numel() for p in model.parameters()):,} parameters, "
          f"vocabulary {len(tokenizer)}, corpus {len(examples)} solutions")
    with tempfile.TemporaryDirectory() as tmp:
        curve = fit(model, tokenizer, examples, spec["pretraining"], "sft", tmp, seed)
    model.generation_config = GenerationConfig(eos_token_id=tokenizer.eos_token_id,
                                               pad_token_id=tokenizer.pad_token_id)
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    return curve


def main(snakemake) -> None:
    with logged(snakemake.log[0], snakemake.threads):
        if replayed(snakemake, folders=(str(Path(snakemake.output.student).parent),)):
            return
        p = snakemake.params.spec
        record = {"name": snakemake.wildcards.student, "prompt_template": p["prompt_template"],
                  "stop_tokens": p["stop_tokens"], "revision": p["revision"]}
        if p["model"] == "builtin":
            out = Path(snakemake.output.student).parent / "model"
            curve = build_builtin_student(p["builtin"], p["prompt_template"], str(out), p["seed"])
            write_curve(Path(snakemake.output.student).parent / "pretraining_curve.csv", curve)
            record["path"] = str(out)
        else:
            record["path"] = p["model"]  # hub id (pinned by revision) or local folder
        write_json(snakemake.output.student, record)


if __name__ == "__main__":
    main(snakemake)  # noqa: F821 -- injected by Snakemake's script directive
