# Drift beyond perplexity, per student over all streams: Q1 token loss attribution, token
# frequency shift against the student's own traces, learner compatibility (low-probability
# tokens, Rank-Surprisal Ratio). Read from the adaptation-cost stage's forward pass.


rule drift:
    input:
        summaries=expand(
            "results/adaptation_cost/{{student}}/{stream}.json", stream=STREAMS
        ),
        per_trace=expand(
            "results/adaptation_cost/{{student}}/{stream}.jsonl", stream=STREAMS
        ),
        tokens=expand(
            "results/adaptation_cost/{{student}}/{stream}.tokens.npz", stream=STREAMS
        ),
    output:
        drift="results/drift/{student}/drift.md",
        tables=expand(
            "results/drift/{{student}}/{table}.{ext}",
            table=[
                "q1_loss_attribution",
                "token_frequency_shift",
                "token_shift_top",
                "learner_compatibility",
            ],
            ext=["csv", "md"],
        ),
        figures=expand(
            "results/drift/{{student}}/{figure}.png",
            figure=[
                "q1_loss_attribution",
                "token_frequency_shift",
                "learner_compatibility",
            ],
        ),
    log:
        "results/logs/drift/{student}.log",
    conda:
        "../envs/report.yaml"
    threads: 1
    resources:
        gpu=res("light", "gpu"),
        mem_mb=by_attempt("light", "mem_mb"),
        runtime=by_attempt("light", "runtime"),
    params:
        streams=STREAMS,
        reference_stream=config["adaptation_cost"]["drift"]["reference_stream"],
        top_tokens=config["adaptation_cost"]["drift"]["top_tokens"],
        code=code("drift.py"),
    script:
        "../scripts/drift.py"
