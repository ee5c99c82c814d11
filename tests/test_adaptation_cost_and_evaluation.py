import math

import numpy as np
import pytest
import torch

from scripts.adaptation_cost import completion_nll, quarter_sums, summarise
from scripts.evaluation import avg_at_k, bootstrap_ci95
from scripts.student import load_student


def test_completion_nll_equals_a_direct_forward_pass_and_ignores_the_prompt(tiny_student):
    model, tok = load_student(tiny_student)
    model.eval()
    prompts = ["Problem: Tom has 3 coins.\nSolution:\n", "Problem: Ana has 12 shells. She loses 5 shells.\nSolution:\n"]
    completions = ["Tom starts with 3 coins.", "Ana starts with 12 shells.\nShe loses 5, so 12 - 5 = 7."]
    batched = completion_nll(model, tok, prompts, completions, batch_size=2)
    for p, c, nll in zip(prompts, completions, batched):
        p_ids, ids = tok(p)["input_ids"], tok(p + c)["input_ids"]
        labels = torch.tensor([[-100] * len(p_ids) + ids[len(p_ids):]])
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
