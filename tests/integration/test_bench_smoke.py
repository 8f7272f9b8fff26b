"""The benchmarks still run: each script as a user runs it, on a corpus small enough for the suite.

`bench/` is not imported here (nor does it import the tests): a benchmark that breaks shows up
as a FAILED row or a non-zero exit of the script itself, which is what these runs look for.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench"


def run_bench(script: str, *args: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(BENCH / script), *args], capture_output=True, text=True, timeout=timeout, check=False
    )


def test_the_engine_only_availability_benchmark_runs_and_its_engines_agree() -> None:
    done = run_bench("bench_availability.py", "--events", "40", "--runs", "3", "--json")
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout)
    assert result["events"] == 40 and result["busy_intervals_in_first_window"] > 0
    assert result["engines"]["calmirror"]["median_ms"] > 0
    assert all(result["agree_with_calmirror"].values())


def test_every_benchmark_runs_on_a_tiny_corpus(tmp_path: Path) -> None:
    table = tmp_path / "results.md"
    done = run_bench("run_all.py", "--events", "12", "--no-vdirsyncer", "--push-count", "3", "--markdown", str(table))
    assert done.returncode == 0, done.stderr[-2000:]
    text = table.read_text()
    assert "FAILED" not in text, text
    for bench in ("initial mirror", "idle re-sync", "push latency", "local serving", "availability, 30 days"):
        assert f"| {bench} (12 events) |" in text
    assert "3 of 3 arrived" in text
    assert "| answers agree with Radicale | yes |" in text


def test_the_week_page_benchmark_runs() -> None:
    done = run_bench("bench_week_page.py", "--events", "30", "--runs", "2", "--json")
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout)
    assert result["events"] == 30 and result["median_ms"] > 0


def test_the_load_benchmark_runs_against_the_daemon_and_plain_radicale() -> None:
    done = run_bench("bench_load.py", "--events", "20", "--clients", "2", "--seconds", "2", timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    for target in ("calmirror", "plain Radicale"):
        line = next(row for row in done.stdout.splitlines() if row.startswith(f"| {target} | put |"))
        assert int(line.split("|")[3]) > 0, line  # answered writes
    assert "peak PSS" in done.stdout  # the daemon and its children, counted once


def test_the_range_query_benchmark_runs_and_answers_agree() -> None:
    done = run_bench("bench_range_query.py", "--events", "40", "--weeks", "2", "--rounds", "1")
    assert done.returncode == 0, done.stderr[-2000:]
    assert "identical answers" in done.stdout and "first query after the index was warmed" in done.stdout


def test_the_restart_benchmark_runs_the_daemon_over_a_mirror() -> None:
    done = run_bench("bench_restart.py", "--events", "20", "--idle-s", "1", "--burst", "2", "--json", timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["events"] == 20 and result["burst"] == 2
    assert result["first_put_after_restart_s"] > 0 and result["vmhwm_after_burst_mib"] > 0


def test_the_mirror_benchmark_runs_a_base_revision_beside_this_checkout() -> None:
    code = str(BENCH.parent / "daemon")
    done = run_bench("bench_mirror.py", "--events", "12", "--no-vdirsyncer", "--base-pythonpath", code, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    rows = [line for line in done.stdout.splitlines() if line.startswith("| ") and "requests to iCloud" in line]
    assert [row.split("|")[1].strip() for row in rows] == ["initial mirror", "idle re-sync", "one-change re-sync"]
    assert all(row.split("|")[3].strip() == row.split("|")[4].strip() for row in rows)  # same requests both sides


def test_the_free_busy_benchmark_runs_both_clients_a_base_and_the_peer() -> None:
    code = str(BENCH.parent / "daemon")
    done = run_bench(
        "bench_freebusy.py",
        *("--events", "20", "--requests", "3", "--plain-requests", "1", "--base-pythonpath", code, "--json"),
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    results = json.loads(done.stdout.strip().splitlines()[-1])["results"]
    for side in ("base", "this"):
        for collection in ("busy", "icloud-work"):
            for client in ("requests", "bare"):
                assert results[f"{side}: HTTP REPORT {collection}, {client}"]["n"] == 3
            assert results[f"{side}: in process, WSGI app {collection}"]["median_ms"] > 0
        assert results[f"{side}: daemon CPU per REPORT"]["n"] == 12
    assert results["plain Radicale icloud-work"]["n"] == 1
