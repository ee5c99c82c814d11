"""The student, sampled and scored, behind one interface.

``generator(name, student, adapter=None, batch_size=64, vllm=None, gpu_dtype="bfloat16")``
returns an object with

- ``sample(prompts, n, temperature, max_new_tokens, seed) -> list[list[Sample]]``;
- ``score(prompts, completions) -> list[TraceTokens]``: each completion token's NLL and
  vocabulary rank given its prompt (the adaptation-cost stage);
- ``tokenizer``.

Backends (``GENERATORS``, chosen by ``native_traces.backend``, ``evaluation.backend`` and
``adaptation_cost.backend``):

- ``transformers`` (the CPU default): batched ``generate`` with the KV cache, on the GPU in
  ``gpu_dtype`` when there is one;
- ``vllm``: vLLM's offline engine in a process of its own (``vllm_engine``, run with the
  interpreter ``vllm.python``), configured by the config's ``vllm`` block.

Both stop at the tokenizer's EOS and at the student's ``stop_tokens`` (e.g. ``<|im_end|>`` for a
chat-templated base model), and see the same token ids (prompts are tokenized here).
"""

from scripts.infrastructure.registry import Registry

GENERATORS = Registry("generation backend")


@GENERATORS.register("transformers")
def _transformers():
    from scripts.backends.generation.transformers_backend import TransformersBackend

    return TransformersBackend


@GENERATORS.register("vllm")
def _vllm():
    from scripts.backends.generation.vllm_backend import VLLMBackend

    return VLLMBackend


def generator(
    name: str,
    student: dict,
    adapter: str | None = None,
    batch_size: int = 64,
    vllm: dict | None = None,
    gpu_dtype: str = "bfloat16",
):
    return GENERATORS.load(name, "backend")(
        student, adapter=adapter, batch_size=batch_size, vllm=vllm, gpu_dtype=gpu_dtype
    )
