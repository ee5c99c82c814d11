"""Rule ``mechanism`` (a target: ``snakemake mechanism``): which drift measure predicts utility,
across every stream of the run (``scripts.analysis.mechanism``) -- the table, the correlations with
their permutation p-values and partial correlations, and the dose-response figure."""

from scripts.analysis.mechanism import collect, correlations, dose_response_figure, markdown
from scripts.infrastructure.records import write_csv, write_json, write_text
from scripts.infrastructure.stage_log import logged


def main(snakemake) -> None:
    with logged(snakemake.log[0], snakemake.threads):
        p, o = snakemake.params, snakemake.output
        rows = collect(p.streams, p.runs, p.stream_specs, p.oracles, p.exposure)
        corr = correlations(rows, p.alpha)
        write_text(o.markdown, markdown(rows, corr, p.alpha))
        columns = list(dict.fromkeys(k for r in rows for k in r))
        write_csv(o.table, [{k: r.get(k) for k in columns} for r in rows], columns)
        write_json(o.correlations, corr)
        fig = dose_response_figure(rows)
        fig.savefig(o.figure, dpi=120)
        fig.clf()
        print(f"mechanism: {len(rows)} streams, {len(corr)} correlations")


if __name__ == "__main__":
    main(snakemake)  # noqa: F821 -- injected by Snakemake's script directive
