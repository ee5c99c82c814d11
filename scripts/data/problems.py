"""Problems: the training pool and the benchmark suites, in one normalised schema.

Every record: ``id, problem, answer, reference_solution, source`` (+ ``graph`` for generated
problems, which the built-in oracle and reward use), plus the row's own metadata columns
(``columns.metadata``; by default ``subject``, ``level`` and ``unique_id`` where the data has them,
as MATH-500 does), which the evaluation breaks Avg@k down by. ``source`` is the row's own
``source`` column where it has one (NuminaMath-CoT: ``olympiads``, ``cn_k12``, ...), else the file
or dataset it came from; ``id`` is the row's own id where ``columns.id`` maps one, else
``<set>-<row index>``. Sources, chosen per problem set (``PROBLEM_SOURCES``):

- ``generator``: the organism's arithmetic word problems (``scripts.organism.word_problems``);
- ``file``: a local JSONL or Parquet file;
- ``datasets``: any ``datasets`` dataset (hub id + pinned revision, or a local folder).

Files and datasets map their columns (NuminaMath-CoT: problem/solution, answer taken from
the solution's last ``\\boxed{}``; MATH-500: problem/solution/answer). Subsampling is
deterministic: the first ``n`` rows, or ``n`` rows drawn with ``seed``.
"""

import random
from collections import Counter
from pathlib import Path

from scripts.data.verification import last_boxed
from scripts.infrastructure.registry import Registry
from scripts.infrastructure.stage_log import StageError

PROBLEM_SOURCES = Registry("problem source")


@PROBLEM_SOURCES.register("generator")
def _generator():
    from scripts.organism.word_problems import problem_set

    return problem_set


@PROBLEM_SOURCES.register("file")
def _file():
    return lambda name, spec: normalise(name, spec, read_file(spec["path"]))


@PROBLEM_SOURCES.register("datasets")
def _datasets():
    return lambda name, spec: normalise(name, spec, read_dataset(spec))


def read_file(path: str) -> list[dict]:
    """Raw rows of a local JSONL or Parquet file, as dicts."""
    import polars as pl

    if not path:
        raise StageError("problem source 'file' needs 'path'")
    p = Path(path)
    if not p.exists():
        raise StageError(f"problem file not found: {path}")
    try:
        frame = pl.read_parquet(p) if p.suffix == ".parquet" else pl.read_ndjson(p)
    except Exception as e:
        raise StageError(f"cannot read problem file {path}: {e}") from None
    return frame.to_dicts()


def read_dataset(spec: dict) -> list[dict]:
    """Raw rows of a ``datasets`` dataset (hub id at a pinned revision, or a local folder)."""
    import datasets

    if not spec["path"]:
        raise StageError("problem source 'datasets' needs 'path'")
    ds = datasets.load_dataset(spec["path"], spec["name"], split=spec["split"], revision=spec["revision"])
    return ds.to_list()


def normalise(name: str, spec: dict, rows: list[dict]) -> list[dict]:
    cols = spec["columns"]
    for role in ("problem", "solution", "answer", "id"):
        col = cols.get(role)
        if col and rows and col not in rows[0]:
            raise StageError(f"{name}: column {col!r} (for {role}) not in the data; columns are {sorted(rows[0])}")
    if not cols.get("answer") and not cols.get("solution"):
        raise StageError(f"{name}: map an 'answer' column or a 'solution' column to take the answer from")
    present = set(rows[0]) if rows else set()
    metadata = [c for c in cols.get("metadata") or [] if c in present]
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
        own = {c: row.get(c) for c in metadata}
        out.append(
            {
                **own,  # the study's own fields below win over a metadata column of the same name
                "id": str(row[cols["id"]]) if cols.get("id") else f"{name}-{i:06d}",
                "problem": str(problem),
                "answer": str(answer).strip(),
                "reference_solution": solution,
                "source": own.get("source") or spec["path"],
            }
        )
    print(f"{name}: kept {len(out)} rows, dropped {dropped} without a problem or an answer; metadata kept: {metadata}")
    if not out:
        raise StageError(f"{name}: no usable rows in {spec['path']}")
    twice = sorted(i for i, n in Counter(p["id"] for p in out).items() if n > 1)[:3]
    if twice:
        raise StageError(f"{name}: columns.id {cols['id']!r} is not unique (e.g. {twice})")
    return out


def load_problem_set(name: str, spec: dict) -> list[dict]:
    return PROBLEM_SOURCES.load(spec["source"], "source")(name, spec)
