"""Benchmark: where the time goes, and how it grows. `make benchmark` runs every section:

    python benchmarks/speed.py                       # all sections (~30 min on 2 cores)
    python benchmarks/speed.py --only ci dry grid    # some of them

Sections (each prints its figures; a summary with the issue's targets comes last):
  embedded  the embedded default (config.yaml) from an empty results/: Snakemake wall time, peak
            memory of all jobs at once, the base student's Avg@k, job-seconds per rule (from
            Snakemake's own log), then a no-op `snakemake -n` on the finished run
  ci        the same for the CI-sized config (tests/configs/ci.yaml)
  dry       the paper config's dry run (configs/paper.yaml: 4 hub students, 578 jobs)
  growth    the CI-sized run with the pool x2, x4 and the samples per problem x2, x4 (x1 is `ci`)
  grid      jobs in the DAG and its build time as the training grid grows, up to the paper grid
            x 4 students, and the CI-sized wall time that grid would take at the per-job costs `ci`
            measured (a prediction, printed as such)

Peak memory is the largest total resident memory of snakemake and its jobs at once, sampled
every 0.2 s from /proc. Timings are wall-clock on this machine: run it on a quiet one.
"""

import argparse
import datetime as dt
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests")]

from conftest import CONFIGS, SNAKEMAKE, snakemake_command  # noqa: E402 -- the tests' command line

CI = [Path(c) for c in CONFIGS]  # the CI-sized config: the embedded default, tests/configs/ci.yaml on top
PAPER = REPO / "configs" / "paper.yaml"
SECTIONS = ("embedded", "ci", "dry", "growth", "grid")


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


def timed(cmd: list[str], env: dict | None = None, cwd: Path | None = None) -> tuple[float, float, str]:
    """Wall seconds, peak memory (MB) of the process tree, and stdout+stderr; fails loudly."""
    start = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=cwd)
    peak = 0.0

    def sample():
        nonlocal peak
        while proc.poll() is None:
            peak = max(peak, tree_rss_mb(proc.pid))
            time.sleep(0.2)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out, _ = proc.communicate()
    sampler.join()
    seconds = time.monotonic() - start
    if proc.returncode:
        sys.exit(f"{' '.join(map(str, cmd))} failed ({proc.returncode}):\n{out[-4000:]}")
    return seconds, peak, out


def job_seconds(workdir: Path) -> dict[str, list[float]]:
    """Seconds per job, by rule, from Snakemake's log of the newest run in ``workdir`` (its
    timestamps have one-second resolution: a job under a second counts 0 or 1)."""
    log = max((workdir / ".snakemake" / "log").glob("*.snakemake.log"), key=lambda p: p.stat().st_mtime)
    now, rule, started, per_rule = None, None, {}, defaultdict(list)
    for line in log.read_text().splitlines():
        if m := re.match(r"\[(\w{3} \w{3} +\d+ [\d:]+ \d{4})\]", line):
            now = dt.datetime.strptime(re.sub(" +", " ", m.group(1)), "%a %b %d %H:%M:%S %Y")
        elif m := re.match(r"(?:local)?rule (\w+):", line):
            rule = m.group(1)
        elif (m := re.match(r"\s+jobid: (\d+)", line)) and rule:
            started[m.group(1)] = (rule, now)
            rule = None
        elif (m := re.match(r"Finished jobid: (\d+)", line)) and m.group(1) in started:
            name, begun = started.pop(m.group(1))
            per_rule[name].append((now - begun).total_seconds())
    return dict(per_rule)


def dry_seconds(cmd: list[str], env: dict | None = None, cwd: Path | None = None, repeat: int = 3) -> float:
    """Median wall time of ``repeat`` runs (the first warms the file cache)."""
    return statistics.median(timed(cmd, env, cwd)[0] for _ in range(repeat))


def run_dag(label: str, configs: list[Path], cores: int) -> dict:
    """One run from an empty folder, then a no-op dry run on the finished results."""
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        seconds, peak, _ = timed(snakemake_command(work, configs, cores=cores))
        per_rule = job_seconds(work)
        noop = dry_seconds(snakemake_command(work, configs, "-n", "--quiet", cores=cores))
        base = json.loads(next((work / "results" / "evaluation").glob("*/base/scores.json")).read_text())
        greedy = json.loads(next((work / "results" / "evaluation").glob("*/base_greedy/scores.json")).read_text())
    jobs = sum(map(len, per_rule.values()))
    print(f"\n## {label}: {seconds:.0f} s of Snakemake on {cores} cores, {jobs} jobs, peak memory {peak:.0f} MB")
    print(
        f"base student Avg@{base['k']} {100 * base['avg_at_k']:.1f}% (greedy {100 * greedy['avg_at_k']:.1f}%); "
        f"no-op `snakemake -n` {noop:.2f} s"
    )
    total = sum(map(sum, per_rule.values()))
    print("\n| rule | jobs | job-seconds | share | per job |\n|---|---|---|---|---|")
    for rule, secs in sorted(per_rule.items(), key=lambda kv: -sum(kv[1])):
        if sum(secs):
            print(f"| {rule} | {len(secs)} | {sum(secs):.0f} | {sum(secs) / total:.0%} | {sum(secs) / len(secs):.1f} |")
    print(f"| all | {jobs} | {total:.0f} | | |")
    return {"seconds": seconds, "peak_mb": peak, "noop_s": noop, "per_rule": per_rule, "base": base["avg_at_k"]}


def layer(tmp: Path, name: str, content: dict) -> Path:
    path = tmp / f"{name}.yaml"
    path.write_text(yaml.safe_dump(content))
    return path


def paper_workdir(tmp: Path) -> Path:
    """A folder laid out like the repository root (prompts/ and config.yaml), as a cluster run
    starts from, so the paper config's relative prompt paths resolve."""
    work = tmp / "paper"
    work.mkdir()
    for name in ("prompts", "config.yaml"):
        (work / name).symlink_to(REPO / name)
    return work


def paper_env() -> dict:
    # The config check refuses a missing API key before any job; a dry run sends nothing.
    return {**os.environ, "OPENAI_API_KEY": "benchmark-dry-run"}


def planned(out: str) -> dict[str, int]:
    table = out.split("Job stats:")[1].split("total")[0]
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\w+)\s+(\d+)\s*$", table, re.M)}


def paper_dry_run() -> float:
    with tempfile.TemporaryDirectory() as tmp:
        work = paper_workdir(Path(tmp))
        cmd = snakemake_command(work, [PAPER], "--replace-workflow-config", "-n", "--quiet", "rules")
        jobs = sum(planned(timed(cmd, paper_env())[2]).values())
        seconds = dry_seconds(cmd, paper_env())
    print(f"\n## paper config dry run: {jobs} jobs planned in {seconds:.2f} s (median of 3)")
    return seconds


def growth(ci: dict, cores: int) -> list[tuple[str, float]]:
    pool, samples = yaml.safe_load(CI[1].read_text())["problems"]["pool"]["n"], 4
    rows = [("x1 (CI-sized)", ci["seconds"], ci["per_rule"])]
    with tempfile.TemporaryDirectory() as tmp:
        for label, edit in [
            (f"pool x2 ({2 * pool} problems)", {"problems": {"pool": {"n": 2 * pool}}}),
            (f"pool x4 ({4 * pool} problems)", {"problems": {"pool": {"n": 4 * pool}}}),
            (f"samples per problem x2 ({2 * samples})", {"native_traces": {"n": 2 * samples}}),
            (f"samples per problem x4 ({4 * samples})", {"native_traces": {"n": 4 * samples}}),
        ]:
            work = Path(tmp) / re.sub(r"\W+", "_", label)
            seconds, _, _ = timed(snakemake_command(work, [*CI, layer(Path(tmp), work.name, edit)], cores=cores))
            rows.append((label, seconds, job_seconds(work)))
    stages = ["native_traces", "reward_scores", "fine_tune", "evaluate_checkpoint"]
    print(f"\n## cost growth (CI-sized, {cores} cores): Snakemake wall time, job-seconds of the stages that grow")
    print("\n| run | wall s | x CI | " + " | ".join(stages) + " |\n|---|---|---|" + "---|" * len(stages))
    for label, seconds, per_rule in rows:
        cells = " | ".join(f"{sum(per_rule.get(s, [])):.0f}" for s in stages)
        print(f"| {label} | {seconds:.0f} | {seconds / ci['seconds']:.2f} | {cells} |")
    return [(label, seconds) for label, seconds, _ in rows]


def grid(ci: dict | None, cores: int) -> None:
    """Dry runs of growing training grids: the CI-sized config's, then the paper's."""
    paper = yaml.safe_load(PAPER.read_text())
    students = list(paper["students"])
    seeds = paper["training"]["seeds"]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for label, edit in [
            ("CI-sized, 1 seed", {}),
            ("CI-sized, 4 seeds", {"training": {"seeds": [0, 1, 2, 3]}}),
            (
                "CI-sized, 4 seeds x 2 lr x 2 batch sizes",
                {"training": {"seeds": [0, 1, 2, 3], "lr": [3e-4, 1e-4], "batch_size": [8, 16]}},
            ),
        ]:
            work = tmp / re.sub(r"\W+", "_", label)
            cmd = snakemake_command(work, [*CI, layer(tmp, work.name, edit)], "-n", "--quiet", "rules", cores=cores)
            jobs = planned(timed(cmd)[2])
            rows.append((label, jobs, dry_seconds(cmd, repeat=1)))
        work = paper_workdir(tmp)
        for n in (1, 2, len(students)):
            keep = {s: paper["students"][s] for s in students[:n]}
            edit = layer(tmp, f"paper{n}", {**paper, "students": keep})
            cmd = snakemake_command(work, [edit], "--replace-workflow-config", "-n", "--quiet", "rules", cores=cores)
            rows.append(
                (
                    f"paper grid, {n} student(s)",
                    planned(timed(cmd, paper_env())[2]),
                    dry_seconds(cmd, paper_env(), repeat=1),
                )
            )
        edit = layer(
            tmp,
            "paper_x4",
            {**paper, "training": {**paper["training"], "seeds": [*seeds, *(100 + s for s in range(3 * len(seeds)))]}},
        )
        cmd = snakemake_command(work, [edit], "--replace-workflow-config", "-n", "--quiet", "rules", cores=cores)
        rows.append(
            (
                f"paper grid x4 (seeds x4), {len(students)} students",
                planned(timed(cmd, paper_env())[2]),
                dry_seconds(cmd, paper_env(), repeat=1),
            )
        )
    mean = {r: sum(s) / len(s) for r, s in (ci or {}).get("per_rule", {}).items()}
    predicted = f"; predicted CI-sized wall time at the per-job costs `ci` measured, {cores} cores" if mean else ""
    print(f"\n## training grid: jobs in the DAG and its build time (dry run){predicted}")
    print(
        "\n| DAG | jobs | fine_tune | dry run s |"
        + (" predicted s |" if mean else "")
        + "\n|---|---|---|---|"
        + ("---|" if mean else "")
    )
    for label, jobs, seconds in rows:
        total = sum(jobs.values())
        predicted = sum(n * mean.get(r, 0.0) for r, n in jobs.items()) / cores
        cell = f" {predicted:.0f} |" if mean and label.startswith("CI") else (" |" if mean else "")
        print(f"| {label} | {total} | {jobs.get('fine_tune', 0)} | {seconds:.2f} |{cell}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", nargs="+", choices=SECTIONS, default=list(SECTIONS))
    parser.add_argument("--cores", type=int, default=2)
    args = parser.parse_args()
    names = re.findall(r"^model name\s*:\s*(.+)$", Path("/proc/cpuinfo").read_text(), re.M) or [platform.machine()]
    cpu = names[0]
    print(f"# speed benchmark, {dt.date.today()}, {os.cpu_count()} CPUs ({cpu}), Python {platform.python_version()}")
    found = {}
    if "embedded" in args.only:
        found["embedded"] = run_dag("embedded default (config.yaml)", [REPO / "config.yaml"], args.cores)
    if "ci" in args.only or "growth" in args.only:
        found["ci"] = run_dag("CI-sized (tests/configs/ci.yaml)", CI, args.cores)
    if "dry" in args.only:
        found["paper_dry"] = paper_dry_run()
    if "growth" in args.only:
        growth(found["ci"], args.cores)
    if "grid" in args.only:
        grid(found.get("ci"), args.cores)
    print("\n## targets (issue: 2 cores, a quiet machine)\n\n| figure | measured | target | met |\n|---|---|---|---|")
    checks = []
    if "embedded" in found:
        e = found["embedded"]
        checks += [
            ("embedded default, Snakemake wall", f"{e['seconds']:.0f} s", "<= 300 s", e["seconds"] <= 300),
            ("embedded default, base student Avg@k", f"{100 * e['base']:.1f}%", "20-60%", 0.2 <= e["base"] <= 0.6),
            ("no-op `snakemake -n` (embedded)", f"{e['noop_s']:.2f} s", "<= 1 s", e["noop_s"] <= 1),
        ]
    if "ci" in found:
        c = found["ci"]
        checks += [
            ("CI-sized run", f"{c['seconds']:.0f} s", "<= 60 s", c["seconds"] <= 60),
            ("no-op `snakemake -n` (CI-sized)", f"{c['noop_s']:.2f} s", "<= 1 s", c["noop_s"] <= 1),
        ]
    if "paper_dry" in found:
        checks.append(("paper config dry run", f"{found['paper_dry']:.2f} s", "<= 3 s", found["paper_dry"] <= 3))
    for figure, measured, target, met in checks:
        print(f"| {figure} | {measured} | {target} | {'yes' if met else 'no'} |")
    floor = dry_seconds([*SNAKEMAKE, "--version"])
    print(f"\n(for scale: `snakemake --version` alone takes {floor:.2f} s here)")


if __name__ == "__main__":
    main()
