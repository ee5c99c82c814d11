# Helpers of the oracle stages (streams.smk, retention.smk): which oracle a stream uses, its
# per-item cache of finished requests and the prompt templates it renders. Functions only, as
# in common.smk (included by streams.smk).


def oracle_name(wildcards):
    return config["streams"][wildcards.stream]["oracle"]


def oracle_cache(wildcards):
    """The oracle's per-item cache of finished requests. Not an output: Snakemake deletes a
    job's outputs before it reruns the job, and this file must outlive every rerun (a killed
    or re-prompted stream re-sends only what is not in it)."""
    stream = config["streams"][wildcards.stream]
    if stream["kind"] != "oracle":
        return None
    if config["oracles"][stream["oracle"]]["backend"] == "builtin":
        return None  # sends nothing, caches nothing
    return f"results/oracle_cache/{stream['oracle']}.sqlite"


def oracle_prompt(wildcards):
    """The prompt template an API oracle renders for this stream's task (an input, so editing
    it reruns the stream; only the items whose prompt changed are sent again)."""
    stream = config["streams"][wildcards.stream]
    if stream["kind"] != "oracle":
        return []
    spec = config["oracles"][stream["oracle"]]
    if spec["backend"] == "builtin":
        return []
    return [spec["prompts"][stream["task"]]]


def judge_prompt(wildcards):
    """The judge's prompt template when the stream's oracle is an API (reruns on an edit)."""
    stream = config["streams"][wildcards.stream]
    if stream["kind"] != "oracle":
        return []
    spec = config["oracles"][stream["oracle"]]
    return [] if spec["backend"] == "builtin" else [spec["prompts"]["judge"]]


def retention_outputs(wildcards=None):
    """Retention of every oracle stream of every student."""
    return [
        f"results/retention/{st}/{s}.{ext}"
        for st in STUDENTS
        for s, spec in config["streams"].items()
        if spec["kind"] == "oracle"
        for ext in ("jsonl", "json")
    ]
