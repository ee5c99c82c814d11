"""Rule ``report``: the paper's tables (``scripts.analysis.tables``) and figures
(``scripts.analysis.figures``) from every measured artifact, read once
(``scripts.analysis.collect``)."""

from scripts.analysis.collect import at_defaults, collect_base, collect_runs, collect_streams, setting_label
from scripts.analysis.construction import by_construction
from scripts.analysis.figures import plot_figures
from scripts.analysis.tables import decontamination_markdown, utility_breakdown_markdown, write_tables
from scripts.infrastructure.records import read_json, write_text
from scripts.infrastructure.stage_log import logged


def main(snakemake) -> None:
    with logged(snakemake.log[0], snakemake.threads):
        p, o = snakemake.params, snakemake.output
        stream_rows = collect_streams(p.streams, p.primary_reward)
        run_rows, base_rows = collect_runs(p.runs), collect_base(p.base)
        d = p.table_defaults
        defaults = {"lr": float(d["lr"]), "batch_size": int(d["batch_size"]), "epochs": float(d["epochs"])}
        if run_rows and not at_defaults(run_rows, defaults):
            print(f"warning: no run at the Table 1 setting {setting_label(defaults)}")
        write_tables(
            stream_rows,
            run_rows,
            base_rows,
            defaults,
            p.primary_reward,
            o.streams_csv,
            o.table1,
            o.mechanism,
            p.published,
            dict(o.items()).get("published_comparison"),
            by_construction(p.stream_specs, p.oracles, p.rewards),
            p.alpha,
            p.streams,
        )
        outputs = dict(o.items())  # a test may ask for some of the tables only
        if "utility_breakdown" in outputs:
            write_text(o.utility_breakdown, utility_breakdown_markdown(run_rows, base_rows, defaults))
        if "decontamination" in outputs:
            write_text(o.decontamination, decontamination_markdown(read_json(snakemake.input.decontamination)))
        for path in plot_figures(stream_rows, run_rows, base_rows, defaults, o.figures, p.primary_reward):
            print(f"wrote {path}")


if __name__ == "__main__":
    main(snakemake)  # noqa: F821 -- injected by Snakemake's script directive
