"""What every stage script shares when Snakemake runs it: a log file per job, offline hubs,
and one clear line on the console naming the cause when the stage fails."""

import contextlib
import os
import sys
import traceback


class StageError(Exception):
    """Bad input to a stage: the message names the cause, no traceback needed."""


@contextlib.contextmanager
def logged(log_path: str | None, threads: int | None = None):
    """Send stdout/stderr (progress bars included) to the job's log; on failure, print the
    cause to the console as well as the full traceback to the log. ``threads`` caps the
    math libraries' threads at the job's share of the cores (set before torch loads)."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    if threads:
        for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ[var] = str(threads)
    console = sys.__stderr__
    if not log_path:
        yield
        return
    os.makedirs(os.path.dirname(log_path) or ".", exist_ok=True)
    with open(log_path, "w", buffering=1, encoding="utf-8") as log:
        old = sys.stdout, sys.stderr
        sys.stdout = sys.stderr = log
        try:
            yield
        except StageError as e:
            print(f"error: {e}", file=log)
            print(f"error: {e} (log: {log_path})", file=console)
            raise SystemExit(1) from None
        except BaseException as e:
            traceback.print_exc(file=log)
            print(f"error: {type(e).__name__}: {e} (traceback in {log_path})", file=console)
            raise
        finally:
            sys.stdout, sys.stderr = old
