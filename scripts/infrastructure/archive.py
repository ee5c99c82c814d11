"""The frozen archive: the artifacts that are expensive or cannot be made again (problem sets
read from a hub, the built-in student, native traces, oracle outputs, reward scores), copied
out of ``results/`` with a sha256 per file, so a later run can replay everything downstream
without GPUs, sampling or API access.

- ``freeze`` (rule ``freeze``, ``scripts/stages/freeze.py``) writes ``results/frozen/``: the files under their paths
  relative to ``results/``, ``checksums.sha256`` (``sha256sum`` format) and ``frozen.json``.
- With ``archive.replay: <that folder>`` in the config, each archived stage restores its
  outputs from the archive instead of computing them (``replayed``). Every restored file is
  checked against its checksum first: a tampered or truncated file stops the run with an
  error naming it, and is never used.
"""

import os
import shutil
from pathlib import Path

from scripts.infrastructure.records import read_json, record_checksum, sha256, write_json
from scripts.infrastructure.stage_log import StageError

CHECKSUMS = "checksums.sha256"


def expand(paths: list[str]) -> list[Path]:
    """Files of the given paths, folders expanded, in a stable order."""
    out = []
    for p in map(Path, paths):
        out += sorted(f for f in p.rglob("*") if f.is_file()) if p.is_dir() else [p]
    return out


def freeze(paths: list[str], results: str, out_dir: str, info: dict) -> int:
    """Copy ``paths`` (under ``results``) into ``out_dir`` with their checksums."""
    out, results = Path(out_dir), Path(results)
    if out.exists():
        shutil.rmtree(out)
    lines = []
    for f in expand(paths):
        rel = f.relative_to(results)
        (out / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(f, out / rel)
        lines.append(f"{sha256(f)}  {rel.as_posix()}\n")
    (out / CHECKSUMS).write_text("".join(lines))
    write_json(out / "frozen.json", {**info, "files": len(lines)})
    return len(lines)


def add_files(archive: str | os.PathLike, info: dict) -> int:
    """Add the checksums of the files written into an archive after ``freeze`` (all but
    ``checksums.sha256`` and ``frozen.json``) and ``info`` to its ``frozen.json``."""
    archive = Path(archive)
    sums = checksums(archive)
    new = [
        f.relative_to(archive).as_posix()
        for f in expand([str(archive)])
        if f.relative_to(archive).as_posix() not in {*sums, CHECKSUMS, "frozen.json"}
    ]
    with open(archive / CHECKSUMS, "a") as out:
        out.writelines(f"{sha256(archive / rel)}  {rel}\n" for rel in new)
    write_json(archive / "frozen.json", {**read_json(archive / "frozen.json"), **info})
    return len(new)


def checksums(archive: str | os.PathLike) -> dict[str, str]:
    path = Path(archive) / CHECKSUMS
    if not path.exists():
        raise StageError(f"{archive} is not a frozen archive: it has no {CHECKSUMS}")
    pairs = (line.split("  ", 1) for line in path.read_text().splitlines() if line.strip())
    return {rel: digest for digest, rel in pairs}


def restore(archive: str | os.PathLike, rel: str, dest: str | os.PathLike, sums: dict | None = None) -> None:
    """Copy one archived file to ``dest`` after checking its sha256."""
    sums = sums if sums is not None else checksums(archive)
    if rel not in sums:
        raise StageError(f"the frozen archive {archive} has no {rel}")
    src = Path(archive) / rel
    if not src.exists():
        raise StageError(f"archived artifact {src} is missing")
    got = sha256(src)
    if got != sums[rel]:
        raise StageError(
            f"archived artifact {src} is corrupted (sha256 {got[:12]}..., the archive "
            f"recorded {sums[rel][:12]}...): it was changed or truncated; not using it"
        )
    Path(dest).parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(f"{dest}.partial")
    shutil.copyfile(src, tmp)
    os.replace(tmp, dest)
    if str(dest).endswith(".jsonl"):  # as write_jsonl leaves it: its checksum beside it
        record_checksum(dest, got)


def replayed(snakemake, results: str = "results", folders: tuple[str, ...] = ()) -> bool:
    """If the config replays an archive, restore this job's outputs (and the archived files
    under ``folders``) from it and return True; otherwise return False."""
    archive = snakemake.params.get("replay")
    if not archive:
        return False
    sums = checksums(archive)  # read once, not per restored file
    wanted = []
    for out in snakemake.output:
        rel = Path(out).relative_to(results).as_posix()
        inside = [r for r in sums if r.startswith(rel + "/")]  # a directory output: its files
        wanted += inside if rel not in sums and inside else [rel]
    prefixes = [str(Path(f).relative_to(results)) + "/" for f in folders]
    wanted += [rel for rel in sums if any(rel.startswith(p) for p in prefixes) and rel not in wanted]
    for rel in wanted:
        restore(archive, rel, Path(results) / rel, sums)
    print(f"restored {len(wanted)} files from the frozen archive {archive}")
    return True
