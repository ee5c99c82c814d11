"""Models and where they run, in one place: every stage that loads the student (generation,
scoring, fine-tuning, evaluation) reads it through ``load_student``, and every backend that
moves a model to an accelerator does it through ``on_accelerator``.

A student is a ``student.json`` record: ``{name, path, revision, prompt_template, stop_tokens}``
(``scripts/stages/student.py`` writes it). ``path`` is a hub id, pinned by ``revision``, or a
local folder. The organism's built-in student (``STUDENT_BUILDERS``) is built by its stage first.
"""

from scripts.infrastructure.registry import Registry


def pinned(student: dict) -> dict:
    """``from_pretrained`` keywords that pin a hub student to its revision (none for a folder)."""
    return {"revision": student["revision"]} if student.get("revision") else {}


def load_tokenizer(student: dict):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(student["path"], **pinned(student))


def load_student(student: dict, seed: int | None = None, adapter: str | None = None):
    """(model, tokenizer) of a student record, in float32 on the CPU; ``adapter`` is a LoRA folder."""
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


def context_length(student: dict) -> int:
    from transformers import AutoConfig

    return AutoConfig.from_pretrained(student["path"], **pinned(student)).max_position_embeddings


def on_accelerator(model, dtype=None):
    """The model on the GPU when there is one (cast to ``dtype`` if given), else unchanged."""
    import torch

    if torch.cuda.is_available():
        model.to("cuda", dtype=dtype)
    return model


STUDENT_BUILDERS = Registry("student source")


@STUDENT_BUILDERS.register("builtin")
def _builtin():
    from scripts.organism.student import build_builtin_student

    return build_builtin_student


def student_source(spec: dict) -> str:
    """``builtin`` (the organism's student, built here) or ``pretrained`` (a hub id or a folder)."""
    return "builtin" if spec["model"] == "builtin" else "pretrained"
