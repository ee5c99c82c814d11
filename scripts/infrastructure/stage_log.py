"""What every stage script shares when Snakemake runs it: a log file per job, offline hubs,
the same float kernels on every x86 CPU, and one clear line on the console naming the cause
when the stage fails."""

import contextlib
import os
import sys
import traceback
from pathlib import Path

# torch (ATen), MKL and oneDNN pick their kernels by the CPU's vector instructions, and AVX-512
# kernels round differently from AVX2 ones: the same embedded default trained another student on an
# AVX-512 CPU (Avg@8 22.2%, greedy 75.6%) than on an AVX2-only one (11.7%, 28.9%). With these
# variables every x86 CPU with AVX2 runs the AVX2 kernels and the same bytes come out (measured:
# the AVX-512 machine then gave 11.7% and 28.9%); pretraining there took 11% longer. A variable
# already set wins (ATEN_CPU_CAPABILITY=avx512 ... for speed over cross-machine identity).
CPU_KERNELS = {
    "ATEN_CPU_CAPABILITY": "avx2",
    "MKL_CBWR": "AVX2",
    "MKL_ENABLE_INSTRUCTIONS": "AVX2",
    "ONEDNN_MAX_CPU_ISA": "AVX2",
}


def same_kernels_on_every_cpu(cpuinfo: str = "/proc/cpuinfo") -> None:
    """Pin the float kernels to AVX2 where the CPU has it (before torch loads); a CPU without
    AVX2, or a system without /proc/cpuinfo, keeps its libraries' own choice."""
    try:
        text = Path(cpuinfo).read_text(encoding="utf-8")
    except OSError:
        return
    flags = next((line for line in text.splitlines() if line.startswith("flags")), "")
    if "avx2" in flags.split():
        for var, value in CPU_KERNELS.items():
            os.environ.setdefault(var, value)


class StageError(Exception):
    """Bad input to a stage: the message names the cause, no traceback needed."""


@contextlib.contextmanager
def logged(log_path: str | None, threads: int | None = None):
    """Send stdout/stderr (progress bars included) to the job's log; on failure, print the
    cause to the console as well as the full traceback to the log. ``threads`` caps the
    math libraries' threads at the job's share of the cores, and the float kernels are the same
    on every x86 CPU (both set before torch loads)."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    same_kernels_on_every_cpu()
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
