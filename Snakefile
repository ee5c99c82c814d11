# The Quality-Utility Paradox (Qian et al., ICML 2026, arXiv 2606.16152) as an artifact DAG.
# Method, in the order of the paper: problems -> the student -> native traces -> rejection
# sampling -> data streams -> perceived quality (reward) and adaptation cost (perplexity) ->
# fine-tuning (SFT / DFT) -> utility (Avg@k) -> the paper's tables and figures.

from snakemake.utils import min_version

min_version("9.0")


configfile: "config.yaml"


report: "report/workflow.rst"


include: "rules/common.smk"
include: "rules/inputs.smk"
include: "rules/problems.smk"
include: "rules/student.smk"
include: "rules/native_traces.smk"
include: "rules/rejection_sampling.smk"
include: "rules/streams.smk"
include: "rules/retention.smk"
include: "rules/oracle_estimate.smk"
include: "rules/scores.smk"
include: "rules/adaptation_cost.smk"
include: "rules/drift.smk"
include: "rules/training.smk"
include: "rules/evaluation.smk"
include: "rules/report.smk"
include: "rules/mechanism.smk"
include: "rules/archive.smk"


rule all:
    input:
        report_outputs(),
