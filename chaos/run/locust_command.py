"""The command line of a headless Locust run of loadtests/locustfile.py, shared by `genchaos load` and
`genchaos soak`. Locust itself only ever runs in a child process (it patches the standard library
with gevent on import), so this module finds the locustfile without importing it.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path

from chaos.stack.processes import StackError


def locustfile() -> Path:
    """loadtests/locustfile.py wherever the project is installed, found without importing Locust."""
    spec = importlib.util.find_spec("loadtests")
    if spec is None or not spec.submodule_search_locations:
        raise StackError("the loadtests package is not installed next to chaos")
    return Path(next(iter(spec.submodule_search_locations))) / "locustfile.py"


def locust_command(args: argparse.Namespace, stack_file: Path, out: Path) -> list[str]:
    """The master's (or single runner's) command line."""
    argv = [sys.executable, "-m", "locust", "-f", str(locustfile()), "--headless",
            "--stack-file", str(stack_file), "--summary-file", str(out / "summary.json"),
            "--csv", str(out / "locust"), "--csv-full-history", "--html", str(out / "report.html")]
    if getattr(args, "service", None):
        argv += ["--service", str(args.service.resolve())]
    if args.scenario:
        argv += ["--scenario", args.scenario]
    if args.scenario_file:
        argv += ["--scenario-file", str(args.scenario_file.resolve())]
    if args.users:
        argv += ["--users", str(args.users)]
    if args.spawn_rate:
        argv += ["--spawn-rate", str(args.spawn_rate)]
    if args.run_time:
        argv += ["--run-time", args.run_time]
    return argv
