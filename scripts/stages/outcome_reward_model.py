"""Rule ``outcome_reward_model``: a reward model the pipeline trains itself
(``rewards.<name>.trained_on: native_traces``): the student's weights under a one-label head,
trained on pairs of its correct and incorrect native traces (``scripts.training.reward_model``).
It then scores every stream through the same transformers reward-model path a hub reward model
takes (``scripts.backends.rewards.learned``)."""

from pathlib import Path

from scripts.infrastructure.archive import replayed
from scripts.infrastructure.records import read_json, read_jsonl, write_csv, write_json
from scripts.infrastructure.stage_log import logged
from scripts.training.reward_model import preference_pairs, train_outcome_reward_model


def main(snakemake) -> None:
    folder = Path(snakemake.output.model)
    with logged(snakemake.log[0], snakemake.threads):
        if replayed(snakemake, folders=(str(folder),)):
            return
        hp = snakemake.params.spec["training"]
        student = read_json(snakemake.input.student)
        pairs = preference_pairs(
            read_jsonl(snakemake.input.pool),
            read_jsonl(snakemake.input.traces),
            read_jsonl(snakemake.input.verdicts),
            student["prompt_template"],
            hp["pairs_per_problem"],
        )
        curve = train_outcome_reward_model(student["path"], pairs, hp, str(folder))
        write_csv(snakemake.output.curve, curve, ["step", "loss", "lr"])
        write_json(
            snakemake.output.summary,
            {
                "reward_model": snakemake.wildcards.reward,
                "pairs": len(pairs),
                "steps": len(curve),
                "final_loss": curve[-1]["loss"] if curve else None,
                "base": student["path"],
                **hp,
            },
        )
        print(
            f"outcome reward model: {len(pairs)} pairs, {len(curve)} steps, final loss "
            f"{curve[-1]['loss'] if curve else float('nan'):.4f}"
        )


if __name__ == "__main__":
    main(snakemake)  # noqa: F821 -- injected by Snakemake's script directive
