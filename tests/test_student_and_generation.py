from transformers import AutoTokenizer

from scripts.backends.generation import generator
from scripts.organism.student import native_corpus

from conftest import TINY


def test_tokenizer_reloads_with_the_same_ids(tiny_student):
    from tokenizers import Tokenizer

    text = "Mia starts with 12 marbles.\nShe finds 7 more, so 12 + 7 = 19.\nThe answer is \\(\\boxed{19}\\)."
    saved = Tokenizer.from_file(f"{tiny_student['path']}/tokenizer.json")
    auto = AutoTokenizer.from_pretrained(tiny_student["path"])
    assert auto(text)["input_ids"] == saved.encode(text).ids
    assert auto.eos_token == "<|endoftext|>"
    # digits are split singly, as in Qwen2
    assert all(len(auto.decode([i]).strip()) <= 1 for i in auto("12345")["input_ids"])


def test_native_corpus_is_mostly_native_style():
    corpus = native_corpus({**TINY, "corpus_size": 400})
    foreign = sum("\\(" in s or "$" in s for _, s in corpus)
    assert 0 < foreign < 0.15 * len(corpus)


def test_sampling_is_repeatable_and_records_finish_reason_and_tokens(tiny_student):
    gen = generator("transformers", tiny_student, batch_size=8)
    prompts = [tiny_student["prompt_template"].format(problem=f"Ana has {i} coins.") for i in range(3)]
    a = gen.sample(prompts, n=4, temperature=1.0, max_new_tokens=20, seed=1)
    b = gen.sample(prompts, n=4, temperature=1.0, max_new_tokens=20, seed=1)
    c = gen.sample(prompts, n=4, temperature=1.0, max_new_tokens=20, seed=2)
    assert a == b and a != c
    assert len(a) == 3 and all(len(row) == 4 for row in a)
    for s in (s for row in a for s in row):
        assert s.finish_reason in ("stop", "length")
        assert s.prompt_tokens > 0 and 0 < s.completion_tokens <= 20
        assert s.finish_reason == "stop" or s.completion_tokens == 20


def test_greedy_sampling_is_deterministic(tiny_student):
    gen = generator("transformers", tiny_student, batch_size=8)
    prompt = [tiny_student["prompt_template"].format(problem="Tom has 3 coins.")]
    assert gen.sample(prompt, 2, 0.0, 15, seed=0)[0][0] == gen.sample(prompt, 2, 0.0, 15, seed=9)[0][1]
