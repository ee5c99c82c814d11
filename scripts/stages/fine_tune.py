"""Rule ``fine_tune``: the student trained on one stream -- SFT or DFT, full or LoRA -- at one
point of the lr x batch size x epochs x seed grid (``scripts.training.trainer``). Only the model
is kept (and, for LoRA, only the adapter)."""

import tempfile
from pathlib import Path

from scripts.backends.models import load_student
from scripts.infrastructure.records import read_json, read_jsonl, write_csv, write_json
from scripts.infrastructure.stage_log import logged
from scripts.training.trainer import fit


def main(snakemake) -> None:
    with logged(snakemake.log[0], snakemake.threads):
        p, w = snakemake.params, snakemake.wildcards
        hp = {**p.hparams, "lr": float(w.lr), "batch_size": int(w.batch_size), "epochs": float(w.epochs)}
        seed = int(w.seed)
        student = read_json(snakemake.input.student)
        model, tokenizer = load_student(student, seed=seed)
        template = student["prompt_template"]
        examples = [
            {"prompt": template.format(problem=r["problem"]), "completion": r["trace"]}
            for r in read_jsonl(snakemake.input.stream)
        ]
        # A chat-templated student ends its turn with its first stop token (e.g. <|im_end|>).
        eos = (student.get("stop_tokens") or [None])[0]
        with tempfile.TemporaryDirectory() as scratch:  # trainer state; only the model is kept
            model, curve = fit(
                model,
                tokenizer,
                examples,
                hp,
                w.objective,
                scratch,
                seed,
                eos,
                lora=p.lora if p.method == "lora" else None,
            )
        out = Path(snakemake.output.checkpoint)
        model.save_pretrained(out)
        tokenizer.save_pretrained(out)
        write_csv(snakemake.output.curve, curve, ["step", "loss", "lr"])
        write_json(
            snakemake.output.summary,
            {
                "method": p.method,
                "objective": w.objective,
                "seed": seed,
                **hp,
                "n_examples": len(examples),
                "steps": len(curve),
                "final_loss": curve[-1]["loss"] if curve else None,
                "base": student["path"],
            },
        )


if __name__ == "__main__":
    main(snakemake)  # noqa: F821 -- injected by Snakemake's script directive
