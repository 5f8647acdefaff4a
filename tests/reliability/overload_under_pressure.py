"""The overload test, run again and again beside CPU-burning processes: shedding must stay `overloaded`
(never `database_unavailable`) when the machine itself is short of CPU.

    .venv/bin/python -m tests.reliability.overload_under_pressure --runs 20 --burners 2

Each run is a separate pytest process (a fresh stack); the burners spin for the whole series. Exits 0
only when every run passed, and prints each run's outcome and burst summary line.
"""

from __future__ import annotations

import argparse
import multiprocessing
import subprocess
import sys
import time

TEST = "tests/reliability/test_overload.py::test_burst_is_shed_with_503_overloaded_and_service_recovers"


def burn() -> None:
    """Keep one core busy until terminated."""
    while True:
        pass


def run_once() -> tuple[bool, str]:
    """One pytest run of the burst test: (passed, its burst summary or failure line)."""
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-s", "-p", "no:cacheprovider", TEST],
                            capture_output=True, text=True, timeout=900)
    lines = result.stdout.splitlines()
    summary = next((line for line in lines if line.startswith("burst of")), "")
    if result.returncode != 0:
        summary = next((line for line in lines if line.startswith("E ")), summary) or lines[-1:]
    return result.returncode == 0, str(summary)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=20, help="how many times to run the burst test")
    parser.add_argument("--burners", type=int, default=2, help="CPU-burning processes beside it")
    args = parser.parse_args()
    burners = [multiprocessing.Process(target=burn, daemon=True) for _ in range(args.burners)]
    for burner in burners:
        burner.start()
    passed = 0
    try:
        for run in range(1, args.runs + 1):
            started = time.monotonic()
            ok, summary = run_once()
            passed += ok
            print(f"run {run}/{args.runs}: {'passed' if ok else 'FAILED'} in {time.monotonic() - started:.0f} s: "
                  f"{summary}", flush=True)
    finally:
        for burner in burners:
            burner.terminate()
    print(f"{passed} of {args.runs} runs passed beside {args.burners} CPU burners")
    return 0 if passed == args.runs else 1


if __name__ == "__main__":
    sys.exit(main())
