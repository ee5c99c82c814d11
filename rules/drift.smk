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
        drift=report(
            "results/drift/{student}/drift.md",
            caption="../report/drift.rst",
            category="4. Drift beyond perplexity",
            subcategory="{student}",
            labels={"analysis": "all analyses (drift.md)"},
        ),
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
        q1_figure=report(
            "results/drift/{student}/q1_loss_attribution.png",
            caption="../report/drift_q1_loss_attribution.rst",
            category="4. Drift beyond perplexity",
            subcategory="{student}",
            labels={"analysis": "Q1 loss attribution"},
        ),
        shift_figure=report(
            "results/drift/{student}/token_frequency_shift.png",
            caption="../report/drift_token_frequency_shift.rst",
            category="4. Drift beyond perplexity",
            subcategory="{student}",
            labels={"analysis": "token frequency shift"},
        ),
        compatibility_figure=report(
            "results/drift/{student}/learner_compatibility.png",
            caption="../report/drift_learner_compatibility.rst",
            category="4. Drift beyond perplexity",
            subcategory="{student}",
            labels={"analysis": "learner compatibility"},
        ),
    log:
        "results/logs/drift/{student}.log",
    conda:
        "../envs/report.yaml"
    threads: 1
    resources:
        **stage_resources("light"),
    params:
        streams=STREAMS,
        reference_stream=config["adaptation_cost"]["drift"]["reference_stream"],
        top_tokens=config["adaptation_cost"]["drift"]["top_tokens"],
        code=code("drift"),
    script:
        "../scripts/stages/drift.py"
