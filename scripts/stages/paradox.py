"""Rule ``paradox``: the study's claims tested per training setting, with intervals from a paired
bootstrap, a generated verdict and the organism's fidelity checks (``scripts.analysis.paradox``)."""

from scripts.analysis.paradox import analyse, budget_figure, fidelity, markdown, stream_facts
from scripts.infrastructure.records import write_csv, write_text
from scripts.infrastructure.stage_log import logged


def main(snakemake) -> None:
    with logged(snakemake.log[0], snakemake.threads):
        p, o = snakemake.params, snakemake.output
        streams = stream_facts(p.streams, p.stream_specs, p.primary_reward)
        settings = analyse(p.runs, streams, p.rounds, p.seed)
        checks = {
            st: fidelity(
                f["base_sampled"],
                f["base_greedy"],
                f["streams"],
                f["solvable"],
                streams[st],
                p.timeout_s,
                snakemake.threads,
            )
            for st, f in p.fidelity.items()
        }
        write_text(o.markdown, markdown(settings, streams, checks, f"Avg@{p.k}", p.rounds))
        fig = budget_figure(settings, list(dict.fromkeys(s["stream"] for s in p.runs)))
        fig.savefig(o.figure, dpi=120)
        fig.clf()
        write_csv(
            o.table,
            [
                [
                    s["student"],
                    s["objective"],
                    s["lr"],
                    s["batch_size"],
                    s["epochs"],
                    len(s["seeds"]),
                    name,
                    c["value"],
                    c["low"],
                    c["high"],
                ]
                for s in settings
                for name, c in s["utility"].items()
            ],
            [
                "student",
                "objective",
                "lr",
                "batch_size",
                "epochs",
                "seeds",
                "stream",
                "utility",
                "utility_low",
                "utility_high",
            ],
        )
        print(f"{len(settings)} settings analysed")


if __name__ == "__main__":
    main(snakemake)  # noqa: F821 -- injected by Snakemake's script directive
