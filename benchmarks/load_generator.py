"""How many requests per second one Locust FastHttpUser process sustains against the stack's
/healthz, and two worker processes under a master; compared with Locust's published best case
(about 16,000 req/s per process for FastHttpUser), with the CPU the service and the generator used.

    python benchmarks/load_generator.py [--stack-file stack.json] [--users 50] [--seconds 10]

Without --stack-file it starts the embedded stack. The same file is also the locustfile the
measured Locust processes run (Locust imports it under another module name than __main__).
Read the CPU figures before the ratio: when the service uses its cores fully and the generator
does not, the service is the bottleneck and the ratio understates the generator.
"""

from __future__ import annotations

if __name__ != "__main__":  # imported by Locust as the locustfile
    from locust import constant, task
    from locust.contrib.fasthttp import FastHttpUser

    class HealthzUser(FastHttpUser):
        """Hits the cheapest endpoint with no think time: the generator's own ceiling."""

        wait_time = constant(0)

        @task
        def healthz(self) -> None:
            self.client.get("/healthz")

else:
    import argparse
    import contextlib
    import csv
    import json
    import subprocess
    import sys
    import tempfile
    import time
    from pathlib import Path

    import psutil

    from chaos.stack.embedded import EmbeddedStack, StackInfo
    from chaos.stack.processes import free_port

    PUBLISHED_REQ_PER_S = 16_000  # Locust docs: FastHttpUser, one process, best case
    THIS_FILE = Path(__file__).resolve()

    class CpuMeter:
        """CPU seconds used by processes, read every half second so that exited ones still count."""

        def __init__(self, processes: list[psutil.Process]) -> None:
            self._processes = processes
            self._first = self._read()
            self._last = dict(self._first)

        def _read(self) -> dict[int, float]:
            seen = {}
            for process in self._processes:
                with contextlib.suppress(psutil.NoSuchProcess):
                    times = process.cpu_times()
                    seen[process.pid] = times.user + times.system
            return seen

        def sample(self) -> None:
            self._last.update(self._read())

        def used(self) -> float:
            return sum(self._last[pid] - self._first.get(pid, 0.0) for pid in self._last)

    def locust(*args: str) -> list[str]:
        return [sys.executable, "-m", "locust", "-f", str(THIS_FILE), "--loglevel", "WARNING", *args]

    def measure(service_url: str, service: psutil.Process, users: int, seconds: int, workers: int,
                out: Path) -> dict:
        """One headless Locust run: req/s from its CSV, CPU (in cores) of the service and the generator."""
        prefix = out / f"workers{workers}"
        head = locust("--headless", "--only-summary", "--host", service_url, "-u", str(users), "-r", str(users),
                      "-t", f"{seconds}s", "--csv", str(prefix))
        workers_argv: list[list[str]] = []
        if workers:
            port = free_port()
            head += ["--master", "--master-bind-host", "127.0.0.1", "--master-bind-port", str(port),
                     "--expect-workers", str(workers)]
            workers_argv = [locust("--worker", "--master-host", "127.0.0.1", "--master-port", str(port))] * workers
        processes = [subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                     for argv in workers_argv]
        master = subprocess.Popen(head, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        processes.append(master)
        try:
            service_meter = CpuMeter([service])
            generator_meter = CpuMeter([psutil.Process(p.pid) for p in processes])
            started = time.monotonic()
            deadline = started + seconds + 120
            while master.poll() is None and time.monotonic() < deadline:
                service_meter.sample()
                generator_meter.sample()
                time.sleep(0.5)
            wall = time.monotonic() - started
        finally:
            for process in processes:
                if process.poll() is None:
                    process.terminate()
                    process.wait(10)
        with open(f"{prefix}_stats.csv") as stats:
            aggregated = next(row for row in csv.DictReader(stats) if row["Name"] == "Aggregated")
        if int(aggregated["Request Count"]) == 0:
            raise SystemExit(f"no request was made; Locust said:\n{master.stderr.read()[-2000:]}")
        rate = float(aggregated["Requests/s"])
        return {"mode": f"{workers} workers + master" if workers else "1 process", "users": users,
                "req_per_s": round(rate), "failures": int(aggregated["Failure Count"]),
                "ratio_to_published_per_process": round(rate / max(workers, 1) / PUBLISHED_REQ_PER_S, 3),
                "service_cpu_cores": round(service_meter.used() / wall, 2),
                "generator_cpu_cores": round(generator_meter.used() / wall, 2)}

    def main() -> int:
        parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
        parser.add_argument("--stack-file", type=Path, help="a stack `genchaos up` runs (default: start one)")
        parser.add_argument("--users", type=int, default=50, help="concurrent users (default 50)")
        parser.add_argument("--seconds", type=int, default=10, help="length of each run (default 10)")
        parser.add_argument("--json", type=Path, help="also write the figures to this file")
        args = parser.parse_args()
        with contextlib.ExitStack() as exits:
            if args.stack_file:
                info = StackInfo.load(args.stack_file)
            else:
                info = exits.enter_context(EmbeddedStack(profile="hardened", timing="fast")).info
            if not info.service_pid:
                raise SystemExit("the stack file names no service_pid; cannot measure the service's CPU")
            service = psutil.Process(info.service_pid)
            out = Path(exits.enter_context(tempfile.TemporaryDirectory(prefix="genchaos-bench-")))
            results = [measure(info.service_url, service, args.users, args.seconds, workers, out)
                       for workers in (0, 2)]
        print(f"{'mode':<20}{'req/s':>8}{'vs 16k/process':>16}{'service CPU':>13}{'generator CPU':>15}{'fails':>7}")
        for r in results:
            print(f"{r['mode']:<20}{r['req_per_s']:>8}{r['ratio_to_published_per_process']:>16.3f}"
                  f"{r['service_cpu_cores']:>12.2f}c{r['generator_cpu_cores']:>14.2f}c{r['failures']:>7}")
        print(f"{psutil.cpu_count()} cores on this machine, shared by the service and the generator")
        if args.json:
            args.json.write_text(json.dumps(results, indent=2) + "\n")
        return 0

    sys.exit(main())
