"""Rule ``paradox``: the study's claims tested per training setting, each with a p-value and a
verdict at the configured alpha, what holds by construction labelled, the streams that train the
student below its base flagged, and the organism's fidelity checks (``scripts.analysis.paradox``)."""

from scripts.analysis.construction import by_construction
from scripts.analysis.paradox import (
    analyse,
    below_base,
    budget_figure,
    fidelity,
    markdown,
    perceived_quality,
    stream_facts,
)
from scripts.infrastructure.records import write_csv, write_json, write_text
from scripts.infrastructure.stage_log import logged

TABLE = [
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
]


def main(snakemake) -> None:
    with logged(snakemake.log[0], snakemake.threads):
        p, o = snakemake.params, snakemake.output
        streams = stream_facts(p.streams, p.stream_specs, p.primary_reward)
        settings = analyse(p.runs, streams, p.rounds, p.seed, p.alpha)
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
        quality = {st: perceived_quality(files, p.stream_specs, p.alpha) for st, files in p.reward_traces.items()}
        construction = by_construction(p.stream_specs, p.oracles, p.rewards)
        write_text(
            o.markdown, markdown(settings, streams, checks, f"Avg@{p.k}", p.rounds, quality, construction, p.alpha)
        )
        write_json(
            o.claims,
            {
                "alpha": p.alpha,
                "settings": settings,
                "perceived_quality": quality,
                "by_construction": construction,
                "below_base": below_base(settings, {st: c["base_sampled"] for st, c in checks.items()}),
            },
        )
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
            TABLE,
        )
        print(f"{len(settings)} settings analysed")


if __name__ == "__main__":
    main(snakemake)  # noqa: F821 -- injected by Snakemake's script directive
