"""Problems: the training pool and the benchmark suites, in one normalised schema.

Every record: ``id, problem, answer, reference_solution, source`` (+ ``graph`` for generated
problems, which the built-in oracle and reward use). Sources, chosen per problem set:

- ``generator``: the organism's arithmetic word problems (``word_problems``);
- ``file``: a local JSONL or Parquet file;
- ``datasets``: any ``datasets`` dataset (hub id + pinned revision, or a local folder).

Files and datasets map their columns (NuminaMath-CoT: problem/solution, answer taken from
the solution's last ``\\boxed{}``; MATH-500: problem/solution/answer). Subsampling is
deterministic: the first ``n`` rows, or ``n`` rows drawn with ``seed``.
"""


import random
from pathlib import Path

from scripts import word_problems as wp
from scripts.archive import replayed
from scripts.records import write_jsonl
from scripts.stage import StageError, logged
from scripts.verification import last_boxed


def generate(name: str, spec: dict) -> list[dict]:
    rng = random.Random(spec["seed"])
    out, seen = [], set()
    while len(out) < spec["n"]:
        g = wp.sample_graph(rng, rng.randint(spec["min_steps"], spec["max_steps"]), spec["max_value"])
        text = wp.problem_text(g)
        if text in seen:
            continue
        seen.add(text)
        out.append({"id": f"{name}-{len(out):05d}", "problem": text, "answer": str(g.answer),
                    "reference_solution": wp.reference_solution(g), "source": "generator",
                    "graph": g.to_json()})
    return out


def read_rows(spec: dict) -> list[dict]:
    """Raw rows of a file or a ``datasets`` dataset, as dicts."""
    path = spec["path"]
    if not path:
        raise StageError(f"problem source {spec['source']!r} needs 'path'")
    if spec["source"] == "file":
        import polars as pl

        p = Path(path)
        if not p.exists():
            raise StageError(f"problem file not found: {path}")
        try:
            frame = pl.read_parquet(p) if p.suffix == ".parquet" else pl.read_ndjson(p)
        except Exception as e:
            raise StageError(f"cannot read problem file {path}: {e}") from None
        return frame.to_dicts()
    import datasets

    ds = datasets.load_dataset(path, spec["name"], split=spec["split"], revision=spec["revision"])
    return ds.to_list()


def normalise(name: str, spec: dict, rows: list[dict]) -> list[dict]:
    cols = spec["columns"]
    for role in ("problem", "solution", "answer"):
        col = cols.get(role)
        if col and rows and col not in rows[0]:
            raise StageError(f"{name}: column {col!r} (for {role}) not in the data; "
                             f"columns are {sorted(rows[0])}")
    if not cols.get("answer") and not cols.get("solution"):
        raise StageError(f"{name}: map an 'answer' column or a 'solution' column to take the answer from")
    indices = list(range(len(rows)))
    if spec["subsample"] == "random":
        random.Random(spec["seed"]).shuffle(indices)
    out, dropped = [], 0
    for i in indices:
        if spec["n"] and len(out) >= spec["n"]:
            break
        row = rows[i]
        problem = row.get(cols["problem"])
        solution = row.get(cols["solution"]) if cols.get("solution") else None
        answer = row.get(cols["answer"]) if cols.get("answer") else last_boxed(solution or "")
        if isinstance(answer, (list, tuple)):  # e.g. OlympiadBench's final_answer: ["$3$"]
            answer = ", ".join(str(a).strip().strip("$").strip() for a in answer)
        if not problem or answer is None or str(answer).strip() == "":
            dropped += 1  # e.g. a NuminaMath solution without a boxed answer
            continue
        out.append({"id": f"{name}-{i:06d}", "problem": str(problem), "answer": str(answer).strip(),
                    "reference_solution": solution, "source": spec["path"]})
    print(f"{name}: kept {len(out)} rows, dropped {dropped} without a problem or an answer")
    if not out:
        raise StageError(f"{name}: no usable rows in {spec['path']}")
    return out


def load_problem_set(name: str, spec: dict) -> list[dict]:
    if spec["source"] == "generator":
        return generate(name, spec)
    return normalise(name, spec, read_rows(spec))


def main(snakemake) -> None:
    with logged(snakemake.log[0], snakemake.threads):
        if replayed(snakemake):
            return
        records = load_problem_set(snakemake.wildcards.get("benchmark", "pool"), snakemake.params.spec)
        write_jsonl(snakemake.output[0], records)
        print(f"wrote {len(records)} problems to {snakemake.output[0]}")


if __name__ == "__main__":
    main(snakemake)  # noqa: F821 -- injected by Snakemake's script directive
