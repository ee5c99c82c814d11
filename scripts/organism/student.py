"""The organism's built-in student: a Qwen2-architecture causal LM with a byte-level BPE
tokenizer trained with Qwen2's own normaliser and pre-tokenizer (digits split singly), so
``AutoTokenizer`` reloads it with the same ids. It is pretrained (through the project's one
trainer, ``scripts.training.trainer``) on solutions in its *native* style, with a small model's
imperfections (slips that are not carried on, errors that are), and a small share of foreign
styles, so the oracle's notation is rare but not unseen. Saved as an ordinary model folder,
it is loaded like any hub student (``scripts.backends.models``)."""

import random
import tempfile

from scripts.organism import word_problems as wp
from scripts.organism.styles import SWITCHES, restyle
from scripts.training.trainer import fit

EOS = "<|endoftext|>"


def native_corpus(spec: dict) -> list[tuple[str, str]]:
    """(problem, solution) pairs the built-in student is pretrained on: its native style with a
    small model's imperfections, and ``foreign_style_fraction`` of solutions in foreign styles --
    a third each in the Oracle's styles (each switch of ``scripts.organism.styles`` on with
    probability 1/2), the Oracle's fused-step synthesis, and the textbook reference style."""
    rng = random.Random(spec["seed"])
    out = []
    for i in range(spec["corpus_size"]):
        g = wp.sample_graph(rng, rng.randint(spec["min_steps"], spec["max_steps"]), spec["max_value"])
        u = rng.random()
        if u < spec["foreign_style_fraction"] / 3:
            style = {s: 1.0 for s in SWITCHES if rng.random() < 0.5}
            solution = restyle(wp.native_solution(g, rng), style, f"corpus:{spec['seed']}:{i}")
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
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(PRETOKENIZE_REGEX), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=[EOS], initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
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
        vocab_size=len(tokenizer),
        hidden_size=arch["hidden_size"],
        intermediate_size=arch["intermediate_size"],
        num_hidden_layers=arch["layers"],
        num_attention_heads=arch["heads"],
        num_key_value_heads=arch["kv_heads"],
        max_position_embeddings=arch["max_position_embeddings"],
        tie_word_embeddings=True,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=None,
    )
    model = Qwen2ForCausalLM(config)
    print(
        f"built-in student: {sum(p.numel() for p in model.parameters()):,} parameters, "
        f"vocabulary {len(tokenizer)}, corpus {len(examples)} solutions"
    )
    with tempfile.TemporaryDirectory() as tmp:
        model, curve = fit(model, tokenizer, examples, spec["pretraining"], "sft", tmp, seed)
    model.generation_config = GenerationConfig(eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    return curve
