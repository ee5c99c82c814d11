"""The oracle's per-item cache: one SQLite row per finished request, committed as it finishes.

A finished request is one the endpoint answered (whatever the answer says: a reply without a
boxed answer was still paid for). Failures are never stored, so the next run tries them again.
The key is a hash of everything that determines the answer -- the endpoint's model, the task,
the prompt template's name and version, the rendered messages, the sampling parameters and the
item id -- and not the base URL, so moving a server does not pay again.

SQLite in WAL mode: readers never block the writer, a commit per item costs well under a
millisecond, and a process killed at any point leaves every committed row intact. WAL needs
every process that opens the file to be on one host (no network file system shared between
nodes): the cache lives under ``results/oracle_cache/`` on the machine that runs the oracle jobs.

It also records the oracle's Batch API submissions (``batches``), so a job killed while a batch
runs picks that batch up again instead of paying for it twice.
"""

import hashlib
import json
import sqlite3
import time
from pathlib import Path

_SCHEMA = """
CREATE TABLE IF NOT EXISTS responses (
    key TEXT PRIMARY KEY,
    item_id TEXT NOT NULL,
    task TEXT NOT NULL,
    template TEXT NOT NULL,
    model TEXT NOT NULL,
    response TEXT NOT NULL,
    created REAL NOT NULL
) WITHOUT ROWID
"""
# Batch API submissions (``scripts.backends.oracles.batch``): written before the batch is
# created and given its id right after, so a killed job finds what it already submitted.
_BATCHES = """
CREATE TABLE IF NOT EXISTS batches (
    submission TEXT PRIMARY KEY,
    batch_id TEXT,
    task TEXT NOT NULL,
    template TEXT NOT NULL,
    model TEXT NOT NULL,
    items TEXT NOT NULL,
    status TEXT NOT NULL,
    created REAL NOT NULL
)
"""
_CHUNK = 500  # keys per SELECT ... IN (...), well under SQLite's bound on parameters


def canonical(obj) -> str:
    return json.dumps(obj, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def cache_key(model: str, task: str, template: str, messages: list[dict], sampling: dict, item_id: str) -> str:
    """sha256 of what determines the answer (see the module docstring)."""
    payload = {
        "model": model,
        "task": task,
        "template": template,
        "messages": messages,
        "sampling": sampling,
        "item": str(item_id),
    }
    return hashlib.sha256(canonical(payload).encode("utf-8")).hexdigest()


class OracleCache:
    """``path=None`` keeps the cache in memory (nothing survives the process)."""

    def __init__(self, path: str | Path | None):
        self.path = str(path) if path else ":memory:"
        if path:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        # Autocommit (isolation_level=None): each put is its own transaction, durable on return.
        self.db = sqlite3.connect(self.path, timeout=60, isolation_level=None)
        if path:
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: survives a killed process
        self.db.execute(_SCHEMA)
        self.db.execute(_BATCHES)

    def get(self, key: str) -> dict | None:
        row = self.db.execute("SELECT response FROM responses WHERE key = ?", (key,)).fetchone()
        return json.loads(row[0]) if row else None

    def get_many(self, keys: list[str]) -> dict[str, dict]:
        found = {}
        for i in range(0, len(keys), _CHUNK):
            chunk = keys[i : i + _CHUNK]
            marks = ",".join("?" * len(chunk))
            for key, response in self.db.execute(f"SELECT key, response FROM responses WHERE key IN ({marks})", chunk):
                found[key] = json.loads(response)
        return found

    def put(self, key: str, *, item_id: str, task: str, template: str, model: str, response: dict) -> None:
        self.db.execute(
            "INSERT OR REPLACE INTO responses VALUES (?, ?, ?, ?, ?, ?, ?)",
            (key, str(item_id), task, template, model, canonical(response), time.time()),
        )

    def put_many(self, rows: list[tuple[str, dict, dict]]) -> None:
        """Bulk insert of (key, meta, response) in one transaction (benchmarks, imports)."""
        with self.db:
            self.db.execute("BEGIN")
            self.db.executemany(
                "INSERT OR REPLACE INTO responses VALUES (?, ?, ?, ?, ?, ?, ?)",
                [
                    (k, str(m["item_id"]), m["task"], m["template"], m["model"], canonical(r), time.time())
                    for k, m, r in rows
                ],
            )

    # -- Batch API submissions --

    def add_submission(self, submission: str, *, task: str, template: str, model: str, items: list) -> None:
        """``items``: [[cache key, item id], ...], in the order of the batch file."""
        self.db.execute(
            "INSERT INTO batches VALUES (?, NULL, ?, ?, ?, ?, 'submitting', ?)",
            (submission, task, template, model, canonical(items), time.time()),
        )

    def set_batch(self, submission: str, batch_id: str) -> None:
        self.db.execute(
            "UPDATE batches SET batch_id = ?, status = 'submitted' WHERE submission = ?", (batch_id, submission)
        )

    def finish_submission(self, submission: str, status: str) -> None:
        self.db.execute("UPDATE batches SET status = ? WHERE submission = ?", (status, submission))

    def open_submissions(self) -> list[dict]:
        """Submissions whose results were not fetched yet, oldest first."""
        rows = self.db.execute(
            "SELECT submission, batch_id, task, template, model, items FROM batches "
            "WHERE status IN ('submitting', 'submitted') ORDER BY created"
        ).fetchall()
        return [
            {"submission": s, "batch_id": b, "task": t, "template": tp, "model": m, "items": json.loads(i)}
            for s, b, t, tp, m, i in rows
        ]

    def __len__(self) -> int:
        return self.db.execute("SELECT COUNT(*) FROM responses").fetchone()[0]
