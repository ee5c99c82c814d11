"""Benchmark: the whole DAG from an empty results/ directory, with wall time and peak memory.

    python benchmarks/embedded_default.py            # the embedded default (config.yaml)
    python benchmarks/embedded_default.py --ci       # the CI-sized config

Peak memory is the largest total resident memory of snakemake and all its jobs at once,
sampled every 0.2 s from /proc. Also times a dry run after the full run (nothing to do)."""

import argparse
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def tree_rss_mb(root: int) -> float:
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            pid = int(stat.parent.name)
            children.setdefault(int(fields[1]), []).append(pid)
            rss[pid] = int(fields[21]) * 4096
        except (OSError, IndexError, ValueError):
            continue
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        total += rss.get(pid, 0)
        todo += children.get(pid, [])
    return total / 2**20


def timed(cmd: list[str]) -> tuple[float, float, int]:
    start = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    peak = 0.0

    def sample():
        nonlocal peak
        while proc.poll() is None:
            peak = max(peak, tree_rss_mb(proc.pid))
            time.sleep(0.2)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    _, err = proc.communicate()
    sampler.join()
    if proc.returncode:
        sys.stderr.write(err[-4000:])
    return time.monotonic() - start, peak, proc.returncode


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ci", action="store_true", help="use the CI-sized config")
    parser.add_argument("--cores", type=int, default=2)
    args = parser.parse_args()
    configs = [str(REPO / "config.yaml")] + ([str(REPO / "tests/configs/ci.yaml")] if args.ci else [])
    with tempfile.TemporaryDirectory() as work:
        base = [
            sys.executable,
            "-m",
            "snakemake",
            "--snakefile",
            str(REPO / "Snakefile"),
            "--directory",
            work,
            "--configfile",
            *configs,
            "--cores",
            str(args.cores),
        ]
        seconds, peak, rc = timed(base)
        print(
            f"{'CI-sized' if args.ci else 'embedded default'} end to end on {args.cores} cores: "
            f"{seconds:.1f} s, peak memory {peak:.0f} MB, exit {rc}"
        )
        if rc:
            sys.exit(rc)
        seconds, _, rc = timed(base + ["-n"])
        print(f"dry run after the full run: {seconds:.2f} s (exit {rc})")
        print((Path(work) / "results/report/table1.md").read_text())


if __name__ == "__main__":
    main()
