"""Artifacts are plain files: JSONL for records, JSON for metrics, CSV for curves. Writes are
atomic, so a killed job never leaves a half-written artifact that looks finished, and a write
that fails (a full disk, a read-only folder) stops the stage naming the file and the cause,
leaving nothing under that name.

Every JSONL file is written with the sha256 of its bytes beside it (``<file>.sha256``, in
``sha256sum``'s format), and read only if it still has them: a record file truncated or edited
after its stage wrote it is refused by the next stage that reads it, never trained on.
"""

import contextlib
import csv
import errno
import hashlib
import io
import json
import os
from pathlib import Path

from scripts.infrastructure.stage_log import StageError

CHECKSUM = ".sha256"  # the suffix of a JSONL file's checksum beside it


def read_jsonl(path: str | os.PathLike) -> list[dict]:
    verify(path)
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def write_jsonl(path: str | os.PathLike, records) -> None:
    text = "".join(json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n" for r in records)
    _atomic(path, text)
    record_checksum(path, hashlib.sha256(text.encode("utf-8")).hexdigest())


def record_checksum(path: str | os.PathLike, digest: str | None = None) -> None:
    """Write ``<path>.sha256`` for a file just written (``digest``: its sha256, if known)."""
    path = Path(path)
    _atomic(f"{path}{CHECKSUM}", f"{digest or sha256(path)}  {path.name}\n")


def verify(path: str | os.PathLike) -> None:
    """Refuse a file whose bytes are no longer those its stage recorded beside it."""
    side = Path(f"{path}{CHECKSUM}")
    if not side.exists():
        return  # written before checksums were kept, or restored by hand: nothing to compare
    recorded = side.read_text(encoding="utf-8").split(maxsplit=1)[0]
    got = sha256(path)
    if got != recorded:
        raise StageError(
            f"{path} was changed after its stage wrote it (sha256 {got[:12]}..., the stage recorded "
            f"{recorded[:12]}... in {side}): it is truncated or edited, so it is not used. Delete it and rerun "
            f"(Snakemake rebuilds it and what depends on it), or delete {side} to use the edited file on purpose"
        )


def read_json(path: str | os.PathLike):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def write_json(path: str | os.PathLike, obj, sort_keys: bool = True) -> None:
    """``sort_keys=False`` keeps the order where it means something (a config: its benchmarks and
    streams run in the order the user wrote them)."""
    _atomic(path, json.dumps(obj, indent=2, sort_keys=sort_keys, ensure_ascii=False) + "\n")


def write_csv(path: str | os.PathLike, rows: list, header: list[str]) -> None:
    """Rows as dicts (by ``header``) or as sequences, in the csv module's dialect."""
    text = io.StringIO(newline="")
    if rows and isinstance(rows[0], dict):
        w = csv.DictWriter(text, fieldnames=header)
        w.writeheader()
    else:
        w = csv.writer(text)
        w.writerow(header)
    w.writerows(rows)
    _atomic(path, text.getvalue())


def write_text(path: str | os.PathLike, text: str) -> None:
    _atomic(path, text)


def sha256(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


WRITE_FAILURES = {
    errno.ENOSPC: "the disk is full",
    errno.EDQUOT: "the disk quota is used up",
    errno.EROFS: "the file system is read-only",
    errno.EACCES: "no permission to write there",
    errno.EPERM: "no permission to write there",
}


def _atomic(path, text: str) -> None:
    path = Path(path)
    tmp = path.with_name(path.name + ".partial")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "w", encoding="utf-8", newline="") as f:
            f.write(text)
        os.replace(tmp, path)
    except OSError as e:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        cause = WRITE_FAILURES.get(e.errno, "the write failed")
        raise StageError(
            f"cannot write {path}: {e.strerror or e} ({cause}); nothing was written under that name"
        ) from e
