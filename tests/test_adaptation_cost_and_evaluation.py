import math

import numpy as np
import pytest
import torch

from scripts.analysis.adaptation_cost import quarter_sums, summarise
from scripts.analysis.statistics import bootstrap_ci95
from scripts.analysis.utility import avg_at_k
from scripts.backends.generation import generator
from scripts.backends.models import load_student


def scorer(student, batch_size=32):
    """The adaptation-cost stage's forward pass: the transformers backend's ``score``."""
    return generator("transformers", student, batch_size=batch_size, gpu_dtype="float32")


def test_completion_nll_equals_a_direct_forward_pass_and_ignores_the_prompt(tiny_student):
    model, tok = load_student(tiny_student)
    model.eval()
    prompts = ["Problem: Tom has 3 coins.\nSolution:\n", "Problem: Ana has 12 shells. She loses 5 shells.\nSolution:\n"]
    completions = ["Tom starts with 3 coins.", "Ana starts with 12 shells.\nShe loses 5, so 12 - 5 = 7."]
    batched = [t.nll for t in scorer(tiny_student, batch_size=2).score(prompts, completions)]
    for p, c, nll in zip(prompts, completions, batched):
        p_ids, ids = tok(p)["input_ids"], tok(p + c)["input_ids"]
        labels = torch.tensor([[-100] * len(p_ids) + ids[len(p_ids) :]])
        with torch.no_grad():
            mean = model(input_ids=torch.tensor([ids]), labels=labels).loss.item()
        assert len(nll) == len(ids) - len(p_ids)
        assert nll.mean() == pytest.approx(mean, rel=1e-5)


def test_quarters_partition_the_trace_and_global_ppl_is_token_weighted():
    traces = [np.array([1.0, 1.0, 2.0, 2.0, 3.0, 3.0, 4.0, 4.0]), np.array([0.5, 0.5, 0.5, 0.5])]
    assert sum(c for _, c in quarter_sums(traces[0])) == 8
    s = summarise(traces)
    assert s["tokens"] == 12
    assert s["ppl"] == pytest.approx(math.exp((20 + 2) / 12))
    assert s["ppl_q1"] == pytest.approx(math.exp((2 + 0.5) / 3))
    assert s["ppl_q4"] == pytest.approx(math.exp((8 + 0.5) / 3))


def test_avg_at_k_is_mean_accuracy_not_pass_at_k():
    correct = [[True, False, False, False], [True, True, True, True], [False] * 4]
    assert avg_at_k(correct) == pytest.approx((0.25 + 1 + 0) / 3)


def test_bootstrap_interval_brackets_the_mean():
    x = [0.0, 0.25, 0.5, 1.0, 1.0, 0.75]
    low, high = bootstrap_ci95(x)
    assert low <= np.mean(x) <= high and low < high
    assert bootstrap_ci95([0.5] * 5) == (0.5, 0.5)


# -- learner compatibility from the same forward pass (appended with the drift analyses) ---------
PROMPTS = [
    "Problem: Tom has 3 coins.\nSolution:\n",
    "Problem: Ana has 12 shells. She loses 5 shells.\nSolution:\n",
    "Problem: Li has 4 cups.\nSolution:\n",
]
COMPLETIONS = [
    "Tom starts with 3 coins.",
    "Ana starts with 12 shells.\nShe loses 5, so 12 - 5 = 7.",
    "Li starts with \\(4\\) cups. The answer is \\(\\boxed{4}\\).",
]


def test_ranks_and_low_probability_tokens_equal_a_direct_forward_pass(tiny_student):
    from scripts.analysis.adaptation_cost import low_prob_count, rank_surprisal_ratio

    model, tok = load_student(tiny_student)
    model.eval()
    traces = scorer(tiny_student, batch_size=2).score(PROMPTS, COMPLETIONS)
    one_by_one = scorer(tiny_student, batch_size=1).score(PROMPTS, COMPLETIONS)
    for p, c, t, u in zip(PROMPTS, COMPLETIONS, traces, one_by_one):
        ids = tok(p + c)["input_ids"]
        n = len(ids) - len(tok(p)["input_ids"])
        with torch.no_grad():
            logits = model(input_ids=torch.tensor([ids])).logits[0, -n - 1 : -1]
        probs = torch.softmax(logits, -1)
        target = torch.tensor(ids[-n:])
        order = torch.argsort(logits, dim=-1, descending=True)
        rank = (order == target[:, None]).float().argmax(-1) + 1  # 1 = the student's top choice
        assert t.ids.tolist() == ids[-n:]
        assert t.rank.tolist() == rank.tolist() == u.rank.tolist()
        assert np.allclose(t.nll, u.nll, atol=1e-5)
        p_target = probs[torch.arange(n), target]
        assert low_prob_count(t.nll, 0.1) == int((p_target < 0.1).sum())
        clipped = np.minimum(rank.numpy(), 3)
        assert rank_surprisal_ratio(t.rank, t.nll, 3) == pytest.approx(clipped.sum() / t.nll.sum())
    assert max(t.rank.max() for t in traces) > 3  # the clip above was exercised


def test_stream_rsr_is_mean_clipped_rank_over_mean_surprisal_across_traces():
    from scripts.analysis.adaptation_cost import learner_compatibility
    from scripts.backends.generation.base import TraceTokens

    a = TraceTokens(ids=np.array([1, 2]), nll=np.array([0.1, 3.0]), rank=np.array([1, 500]))
    b = TraceTokens(ids=np.array([3, 4, 5, 6]), nll=np.array([1.0, 1.0, 1.0, 1.0]), rank=np.array([2, 2, 2, 2]))
    s = learner_compatibility([a, b], threshold=0.1, clip=100)
    assert s["mean_clipped_rank"] == pytest.approx(((1 + 100) / 2 + 2) / 2)
    assert s["mean_surprisal"] == pytest.approx((3.1 / 2 + 1.0) / 2)
    assert s["rsr"] == pytest.approx(s["mean_clipped_rank"] / s["mean_surprisal"])
    assert s["rsr_mean_per_trace"] == pytest.approx((101 / 3.1 + 8 / 4) / 2)
    # p < 0.1 means NLL > ln 10 = 2.303: one token of six
    assert s["low_prob_fraction"] == pytest.approx(1 / 6) and s["low_prob_fraction_mean_per_trace"] == pytest.approx(
        0.25
    )


def test_token_data_keeps_each_traces_first_quarter_and_counts_every_token(tiny_student):
    from scripts.analysis.adaptation_cost import token_data

    tok = load_student(tiny_student)[1]
    traces = scorer(tiny_student).score(PROMPTS, COMPLETIONS)
    data = token_data(traces, tok)
    for i, t in enumerate(traces):
        lo, hi = data["q1_offsets"][i], data["q1_offsets"][i + 1]
        first = np.array_split(t.ids, 4)[0]
        assert data["q1_token_ids"][lo:hi].tolist() == first.tolist()
        assert np.allclose(data["q1_nll"][lo:hi], t.nll[: len(first)], atol=1e-6)
    assert data["vocab_counts"].sum() == sum(len(t.ids) for t in traces) == data["tokens_per_trace"].sum()
    text = dict(zip(data["vocab_ids"].tolist(), data["vocab_text"].tolist()))
    assert "".join(text[i] for i in traces[0].ids.tolist()) == COMPLETIONS[0]


def test_a_trace_past_the_students_context_is_scored_up_to_it_and_flagged(tiny_student):
    model, tok = load_student(tiny_student)
    context = model.config.max_position_embeddings
    prompt = "Problem: Tom has 3 coins.\nSolution:\n"
    short, long = "Tom starts with 3 coins.", "Tom starts with 3 coins. " * 100
    traces = scorer(tiny_student, batch_size=2).score([prompt, prompt], [short, long])
    assert len(tok(prompt + long)["input_ids"]) > context
    assert [t.truncated for t in traces] == [False, True]
    assert len(tok(prompt)["input_ids"]) + len(traces[1].nll) == context - 1
    assert np.isfinite(traces[1].nll).all()


def test_the_learnability_probe_counts_the_result_tokens_the_student_ranks_first(tiny_student):
    from scripts.analysis.adaptation_cost import learnability, result_tokens

    prompt = "Problem: Tom has 3 coins. He finds 4 more coins.\nSolution:\n"
    completion = (
        "Tom starts with 3 coins.\nHe finds 4 more, so 3 + 4 = 7.\nNow 7 + 15 = 22.\nThe answer is \\boxed{22}."
    )
    (trace,) = scorer(tiny_student).score([prompt], [completion])
    mask = result_tokens(trace, completion)
    tok = load_student(tiny_student)[1]
    # the digits of 7 and of 22 after "=": one token per digit (Qwen2's pre-tokenizer splits them)
    assert [tok.decode([int(i)]) for i in trace.ids[mask]] == ["7", "2", "2"]
    probe = learnability([{"trace": completion}], [trace])
    assert probe["result_tokens"] == 3
    assert probe["result_token_accuracy"] == pytest.approx(float((trace.rank[mask] == 1).mean()))
