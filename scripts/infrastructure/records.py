"""Artifacts are plain files: JSONL for records, JSON for metrics, CSV for curves. Writes are
atomic, so a killed job never leaves a half-written artifact that looks finished."""

import csv
import hashlib
import io
import json
import os
from pathlib import Path


def read_jsonl(path: str | os.PathLike) -> list[dict]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def write_jsonl(path: str | os.PathLike, records) -> None:
    _atomic(path, "".join(json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n" for r in records))


def read_json(path: str | os.PathLike):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def write_json(path: str | os.PathLike, obj) -> None:
    _atomic(path, json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False) + "\n")


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


def _atomic(path, text: str) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".partial")
    with open(tmp, "w", encoding="utf-8", newline="") as f:
        f.write(text)
    os.replace(tmp, path)
