# Data streams over the solvable set: SLM-RFT, reference solutions and the oracle streams. The
# oracle helpers here serve the retention rule too.

from scripts.backends.oracles import ORACLES
from scripts.backends.oracles.prompts import fingerprint


def stream_spec(wildcards):
    return config["streams"][wildcards.stream]


def oracle_spec(wildcards):
    stream = stream_spec(wildcards)
    return config["oracles"][stream["oracle"]] if stream["kind"] == "oracle" else None


def oracle_name(wildcards):
    return stream_spec(wildcards)["oracle"]


def oracle_code(stage):
    """A stage's code with the oracle backend its stream uses (none for other streams)."""

    def version(wildcards):
        spec = oracle_spec(wildcards)
        return code(stage, *([ORACLES.loader(spec["backend"])] if spec else []))

    return version


def oracle_cache(wildcards):
    """The oracle's per-item cache of finished requests. Not an output: Snakemake deletes a
    job's outputs before it reruns the job, and this file must outlive every rerun (a killed
    or re-prompted stream re-sends only what is not in it)."""
    spec = oracle_spec(wildcards)
    if spec is None or spec["backend"] == "builtin":
        return None  # sends nothing, caches nothing
    return f"results/oracle_cache/{oracle_name(wildcards)}.sqlite"


def oracle_prompt(task):
    """What an API oracle sends for ``task`` (the stream's own, or "judge"): a fingerprint of the
    template's messages, so editing them reruns the stream and its descendants (and re-sends only
    the items whose prompt changed), while editing a template's preamble reruns nothing."""

    def prompt(wildcards):
        spec = oracle_spec(wildcards)
        if spec is None or spec["backend"] == "builtin":
            return None
        return fingerprint(spec["prompts"][task or stream_spec(wildcards)["task"]])

    return prompt


def oracle_api(wildcards):
    """Oracle API slots a stream job holds (1 for oracle streams); `--resources oracle_api=N`
    in a profile caps how many such jobs run at once, across the whole run."""
    return int(stream_spec(wildcards)["kind"] == "oracle")


rule stream:
    input:
        archived=archived,
        solvable="results/rejection_sampling/{student}/solvable.jsonl",
    output:
        stream="results/streams/{student}/{stream}.jsonl",
        rejected="results/streams/{student}/{stream}.rejected.jsonl",
        summary="results/streams/{student}/{stream}.summary.json",
    log:
        "results/logs/streams/{student}/{stream}.log",
    resources:
        **stage_resources("light"),
        oracle_api=oracle_api,
    params:
        spec=stream_spec,
        oracle=oracle_spec,
        oracle_cache=oracle_cache,
        prompt=oracle_prompt(None),
        timeout_s=config["rejection_sampling"]["timeout_s"],
        replay=REPLAY,
        code=oracle_code("streams"),
    threads: 1
    conda:
        "../envs/data.yaml"
    script:
        "../scripts/stages/streams.py"
