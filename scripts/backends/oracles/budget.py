"""Budget caps on what the oracles cost: one per oracle (``oracles.<name>.budget_usd``) and one for
the whole run (``oracle_costs.budget_usd``, every API oracle together).

What has been spent is read from the oracles' caches, which hold every answered request with
its token usage (answers fetched through the Batch API are priced at the batch price), so the
ledger survives a killed job and counts what earlier runs paid. Before each request the client
asks ``reserve`` for its expected cost (``scripts.backends.oracles.estimate``); when spent +
in flight + that cost would pass a cap, ``BudgetReached`` names the cap's config key and the
client stops sending: what is in flight finishes and is cached, and the stage stops with the
message. Raise the cap and rerun: nothing answered is sent again.

Several jobs may spend at once (``oracle_api`` slots): each re-reads the ledgers every
``REFRESH_S`` seconds, so a cap can be passed by at most what other jobs sent in that window
plus the requests in flight (each at most its own cost).

The caps decide only whether a request is sent, never what it answers: they (and the other
keys of ``SENDING_KEYS``) are left out of the streams' params, so raising a cap reruns no
finished stream.
"""

import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path

from scripts.backends.oracles.estimate import cost, price
from scripts.backends.oracles.prompts import OracleError

REFRESH_S = 2.0


class BudgetReached(OracleError):
    """The next request would pass a budget cap; the message names its config key."""


def spent(cache: str | Path, spec: dict) -> float:
    """USD the answered requests in an oracle's cache cost at its prices (0 for no cache)."""
    if not cache or not Path(cache).exists():
        return 0.0
    sync, batch = price(spec), price(spec, batch=True) or price(spec)
    db = sqlite3.connect(f"file:{cache}?mode=ro", uri=True, timeout=60)
    try:
        rows = db.execute(
            "SELECT COALESCE(json_extract(response, '$.batch'), 0), "
            "SUM(json_extract(response, '$.prompt_tokens')), SUM(json_extract(response, '$.completion_tokens')) "
            "FROM responses GROUP BY 1"
        ).fetchall()
    except sqlite3.OperationalError:  # no table yet
        return 0.0
    finally:
        db.close()
    return sum(cost(p or 0, c or 0, batch if b else sync) for b, p, c in rows)


@dataclass
class Cap:
    key: str  # the config key, e.g. oracles.gpt.budget_usd
    usd: float
    ledgers: list[tuple[str, dict]]  # (cache file, the spec that prices it)
    base: float = 0.0  # spent as of the last read of the ledgers
    since: float = 0.0  # spent by this process since then
    read_at: float = field(default=-1e9)

    def total(self, in_flight: float) -> float:
        if time.monotonic() - self.read_at > REFRESH_S:
            self.base, self.since, self.read_at = sum(spent(c, s) for c, s in self.ledgers), 0.0, time.monotonic()
        return self.base + self.since + in_flight


class Budget:
    """The caps that apply to one oracle's requests (none: every request may go)."""

    def __init__(self, caps: list[Cap]):
        self.caps = caps
        self.in_flight = 0.0

    @classmethod
    def of(cls, spec: dict, cache: str | None) -> "Budget":
        """The oracle's own cap (``budget_usd``) and the run's (``run_budget``, which the stage adds
        to the spec from the config: ``call_spec``)."""
        caps = []
        name = spec.get("name", "<name>")
        if spec.get("budget_usd") is not None:
            caps.append(Cap(f"oracles.{name}.budget_usd", float(spec["budget_usd"]), [(cache, spec)] if cache else []))
        run = spec.get("run_budget") or {}
        if run.get("usd") is not None:
            caps.append(Cap("oracle_costs.budget_usd", float(run["usd"]), [(c, s) for c, s in run["ledgers"]]))
        return cls(caps)

    def reserve(self, expected: float) -> float:
        for cap in self.caps:
            total = cap.total(self.in_flight)
            if total + expected > cap.usd:
                raise BudgetReached(
                    f"oracle budget reached: {cap.key} is {cap.usd:g} USD, {total:.6g} USD is spent or in flight "
                    f"and the next request would cost about {expected:.3g} USD more. Everything answered is in "
                    f"the oracle's cache: raise {cap.key} and rerun, and nothing answered is sent again."
                )
        self.in_flight += expected
        return expected

    def settle(self, reserved: float, actual: float) -> None:
        """A reserved request ended: ``actual`` is what it cost (0 if it failed)."""
        self.in_flight -= reserved
        for cap in self.caps:
            cap.since += actual


def call_spec(config: dict, name: str, cache: str | None) -> dict:
    """The spec an oracle stage hands its oracle: the config's ``oracles.<name>`` in full (the
    rules' params leave ``SENDING_KEYS`` out), its name, and the run's cap with every API
    oracle's cache as its ledger (caches live side by side: ``results/oracle_cache/<name>.sqlite``)."""
    spec = config["oracles"][name]
    folder = Path(cache).parent if cache else None
    ledgers = [
        (str(folder / f"{n}.sqlite"), s) for n, s in config["oracles"].items() if s["backend"] != "builtin" and folder
    ]
    return {**spec, "name": name, "run_budget": {"usd": config["oracle_costs"]["budget_usd"], "ledgers": ledgers}}
