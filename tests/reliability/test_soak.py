"""`genchaos soak`: the verdict's accounting and growth rules on made-up reads, a one-minute soak on
the embedded stack whose verdict must hold, a shorter one of lumen (examples/lumen) judged through its
contract, and an interrupted soak that must leave nothing behind."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil
import pytest

from chaos.contract import launch
from chaos.contract.model import load_contract
from chaos.run.protocol import marker
from chaos.soak.growth import DESCRIPTORS_PER_CONNECTION, MB, GrowthBounds, judge_growth
from chaos.soak.inventory import FalLogHarvest, storage_object
from chaos.soak.kills import Kill
from chaos.soak.ledger import GONE, Outcome, account
from chaos.soak.resources import ResourceSample, measure
from chaos.soak.verdict import checks, overall
from chaos.stack.embedded import StackInfo
from chaos.stack.processes import free_port
from tests.reliability.observe import wait_for
from tests.toxiproxy.toxiproxy_support import Upstream, connect, create_proxy, recv_exactly

LUMEN_CONTRACT = Path(__file__).resolve().parents[2] / "examples" / "lumen" / "genchaos.yaml"
T0 = 1_000_000.0
TRACES = {"a": "a" * 32, "b": "b" * 32}  # each accepted generation's prompt marker
ACCEPTED = dict(TRACES)


def submit(generation_id: str, t: float, status: int = 200, request_id: str | None = None) -> dict:
    """FAL's log entry of a job whose prompt carries the generation's marker (the service sends no id)."""
    return {"t": T0 + t, "kind": "submit", "status": status, "prompt": f"a lighthouse {marker(TRACES[generation_id])}",
            "request_id": request_id or f"req-{generation_id}-{t}"}


def samples(component: str, pid: int, rss_mb: list[float], fds: int = 20, start_t: float = 0.0) -> list[ResourceSample]:
    return [ResourceSample(start_t + i, component, pid, int(mb * MB), fds, 4, 1) for i, mb in enumerate(rss_mb)]


def completed(key: str) -> Outcome:
    url = f"http://127.0.0.1:9/storage/v1/object/sign/{key}?token=t"
    return Outcome("completed", image_url=url, image_object=storage_object(url))


FLAT = samples("service", 1, [80.0] * 20)
CLEAN = {"a": completed("images/u/a.png"), "b": Outcome("failed", error="FAL job failed")}


def verdict_of(ledger, growth=None, run_s: float = 20.0) -> dict[str, str]:
    results = checks(ledger, judge_growth(FLAT, GrowthBounds()) if growth is None else growth, [], [], run_s,
                     GrowthBounds())
    return {c.name: c.verdict for c in results} | {"overall": overall(results)}


def clean_ledger():
    return account(ACCEPTED, CLEAN, [submit("a", 1), submit("b", 2)], {"images/u/a.png"}, [], [])


def test_a_clean_run_holds_and_its_counts_add_up():
    ledger = clean_ledger()
    assert (ledger.accepted, ledger.completed, ledger.failed, ledger.lost) == (2, 1, 1, 0)
    assert (ledger.seen_by_fal, ledger.stored_objects, ledger.unacknowledged) == (2, 1, 0)
    assert verdict_of(ledger)["overall"] == "held"


@pytest.mark.parametrize("outcomes", [{"a": CLEAN["a"]}, {**CLEAN, "b": Outcome(GONE)}],
                         ids=["never seen ended", "gone: the API answers 404"])
def test_a_lost_generation_fails_the_verdict(outcomes):
    ledger = account(ACCEPTED, outcomes, [submit("a", 1), submit("b", 2)], {"images/u/a.png"}, [], [])
    assert ledger.lost == 1 and ledger.adds_up()
    verdict = verdict_of(ledger)
    assert verdict["nothing lost"] == "not held" and verdict["overall"] == "not held"


def test_a_second_submit_no_documented_retry_explains_fails_the_verdict():
    ledger = account(ACCEPTED, CLEAN, [submit("a", 1), submit("a", 5), submit("b", 2)], {"images/u/a.png"}, [],
                     [(T0 + 1.1, "postgres")])  # the database died before the request id could be stored
    assert ledger.submitted_twice == 1
    assert ledger.examples["submitted_twice"][0]["killed_in_between"] == ["postgres"]
    assert verdict_of(ledger)["nothing submitted to FAL twice"] == "not held"


@pytest.mark.parametrize("log, fal_faults, kills", [
    ([submit("a", 1, status=500), submit("a", 2)], [], []),  # FAL refused the first
    ([submit("a", 1, request_id="r1"), {"t": T0 + 4, "kind": "cancel", "request_id": "r1", "status": 200},
      submit("a", 5)], [], []),  # the service gave the first up after its attempt timed out
    ([submit("a", 1), submit("a", 5)], [(T0 + 0.5, T0 + 4)], []),  # sent while the fal proxy was faulty
    ([submit("a", 1), submit("a", 5)], [], [(T0 + 1.2, "service")]),  # killed before it could store the id
], ids=["refused", "cancelled", "during a fal fault", "kill mid-submit"])
def test_documented_resubmissions_do_not_count_as_duplicates(log, fal_faults, kills):
    ledger = account(ACCEPTED, CLEAN, log, {"images/u/a.png"}, fal_faults, kills)
    assert ledger.submitted_twice == 0
    assert ledger.documented_resubmissions + ledger.resubmitted_after_kill_mid_submit == 1
    assert verdict_of(ledger)["overall"] == "held"


def test_a_request_polled_before_the_kill_was_stored_so_its_resubmission_counts_twice():
    """The service polls only a request it stored: one FAL was asked about before the kill had to be resumed."""
    polled = {"t": T0 + 1.1, "kind": "status", "request_id": "r1", "status": 200}
    log = [submit("a", 1, request_id="r1"), polled, submit("a", 5)]
    ledger = account(ACCEPTED, CLEAN, log, {"images/u/a.png"}, [], [(T0 + 1.2, "service")])
    assert (ledger.submitted_twice, ledger.resubmitted_after_kill_mid_submit) == (1, 0)
    polled_after_the_kill = [*log[:1], {**polled, "t": T0 + 1.3}, log[2]]
    ledger = account(ACCEPTED, CLEAN, polled_after_the_kill, {"images/u/a.png"}, [], [(T0 + 1.2, "service")])
    assert (ledger.submitted_twice, ledger.resubmitted_after_kill_mid_submit) == (0, 1)


def test_fal_log_harvest_keeps_each_requests_first_poll_across_reads():
    """The emulator's log is bounded, so the soak reads it as it goes; a request's first poll must survive
    (it tells a stored request from one the service died before storing), its later polls need not."""
    class Fal:
        reads = [[submit("a", 1, request_id="r1"), {"t": T0 + 2, "kind": "status", "request_id": "r1", "status": 200}],
                 [{"t": T0 + 3, "kind": "status", "request_id": "r1", "status": 200},
                  {"t": T0 + 4, "kind": "result", "request_id": "r1", "status": 200}]]

        def requests(self):
            return self.reads.pop(0)

    harvest = FalLogHarvest(Fal())
    harvest.collect()
    harvest.collect()
    assert [(e["kind"], e["t"] - T0) for e in harvest.entries] == [("submit", 1), ("status", 2)]


def test_an_orphaned_object_and_a_missing_one_fail_the_verdict():
    ledger = account(ACCEPTED, CLEAN, [submit("a", 1), submit("b", 2)], {"images/u/b.png"}, [], [])
    assert (ledger.orphaned_objects, ledger.missing_objects) == (1, 1)
    assert ledger.examples["orphaned_objects"] == [{"key": "images/u/b.png", "generation_id": "b", "status": "failed",
                                                    "error": "FAL job failed"}]
    verdict = verdict_of(ledger)
    assert verdict["no orphaned objects"] == "not held"
    assert verdict["no completed generation without its object"] == "not held"


def test_objects_a_generation_never_acknowledged_may_own_leave_the_orphans_undecided():
    """FAL saw a marked prompt no 202 carried (the service was killed answering it): one stray object may be
    that generation's, so the count cannot decide; two cannot both be."""
    unacknowledged = {"t": T0 + 3, "kind": "submit", "status": 200, "prompt": marker("c" * 32), "request_id": "r9"}
    log = [submit("a", 1), submit("b", 2), unacknowledged]
    one_stray = account(ACCEPTED, CLEAN, log, {"images/u/a.png", "images/u/c.png"}, [], [])
    assert (one_stray.unacknowledged, one_stray.orphaned_objects) == (1, 1)
    assert verdict_of(one_stray)["no orphaned objects"] == "inconclusive"
    assert verdict_of(one_stray)["overall"] == "inconclusive"
    two_strays = account(ACCEPTED, CLEAN, log, {"images/u/a.png", "images/u/c.png", "images/u/d.png"}, [], [])
    assert verdict_of(two_strays)["no orphaned objects"] == "not held"


@pytest.mark.parametrize("outcomes, stored, unreadable, missing", [
    ({**CLEAN, "a": Outcome("completed", image_url="http://127.0.0.1:8000/v2/images/a/content")}, set(), None,
     "1 of 1 completed generations' image URLs name no object of the stack's storage"),
    (CLEAN, None, "connection refused", "the storage emulator could not be listed: connection refused"),
], ids=["image served by the service itself", "storage not listed"])
def test_objects_without_evidence_are_unmeasured_never_held(outcomes, stored, unreadable, missing):
    ledger = account(ACCEPTED, outcomes, [submit("a", 1), submit("b", 2)], stored, [], [], unreadable)
    results = {c.name: c for c in checks(ledger, judge_growth(FLAT, GrowthBounds()), [], [], 20.0, GrowthBounds())}
    for name in ("no orphaned objects", "no completed generation without its object"):
        assert results[name].verdict == "unmeasured" and missing in results[name].observed
    assert overall(list(results.values())) == "held"  # an unmeasured check decides nothing


def test_submissions_fal_cannot_tie_to_a_generation_are_unmeasured():
    unmarked = [{**submit("a", 1), "prompt": "a lighthouse"}, {**submit("b", 2), "prompt": "a lighthouse"}]
    ledger = account(ACCEPTED, CLEAN, unmarked, {"images/u/a.png"}, [], [])
    assert ledger.seen_by_fal == 0
    assert verdict_of(ledger)["nothing submitted to FAL twice"] == "unmeasured"


@pytest.mark.parametrize("url, key", [
    ("http://127.0.0.1:5/storage/v1/object/sign/generations/u%201/a.png?token=x", "generations/u 1/a.png"),
    ("https://p.supabase.co/storage/v1/object/public/lumen-images/u/b.png", "lumen-images/u/b.png"),
    ("http://127.0.0.1:8000/v2/images/b/content", None),
    (None, None),
])
def test_an_image_url_names_the_storage_object_it_serves(url, key):
    assert storage_object(url) == key


def test_memory_growth_beyond_the_bound_fails_the_verdict():
    clean = clean_ledger()
    leaking = samples("service", 1, [80.0 + 10 * i for i in range(20)])  # 100 MB -> ~250 MB
    growth = judge_growth(leaking, GrowthBounds())
    rss = next(g for g in growth if g.metric == "memory_bytes")
    assert rss.held is False and rss.final > rss.limit
    assert verdict_of(clean, growth)["no resource growth beyond the bounds"] == "not held"
    assert verdict_of(clean)["overall"] == "held"


# A parent maps and touches 64 MB of shared memory and forks four children that touch it too: the
# shape of a postmaster's shared buffers and its backends.
SHARED_MEMORY_FAMILY = """
import mmap, os, sys, time
size = 64 * 1024 * 1024
shared = mmap.mmap(-1, size)
shared.write(b"x" * size)
for _ in range(4):
    if os.fork() == 0:
        total = sum(shared[i] for i in range(0, size, 4096))
        time.sleep(60)
        os._exit(0)
print("ready", flush=True)
time.sleep(60)
"""


def test_memory_counts_pages_shared_by_a_family_once():
    family = subprocess.Popen([sys.executable, "-c", SHARED_MEMORY_FAMILY], stdout=subprocess.PIPE, text=True)
    try:
        assert family.stdout.readline().strip() == "ready"
        root = psutil.Process(family.pid)
        wait_for(lambda: len(root.children()) == 4 and all(c.memory_info().rss > 60 * MB for c in root.children()),
                 timeout_s=30, what="four children touching the shared pages")
        summed_rss = sum(p.memory_info().rss for p in [root, *root.children()])
        sample = measure("postgres", family.pid, started_at=time.time())
        assert summed_rss > 300 * MB  # what a summed RSS would have judged
        assert 64 * MB < sample.memory_bytes < 110 * MB and sample.processes == 5
    finally:
        for process in [*psutil.Process(family.pid).children(), psutil.Process(family.pid)]:
            process.kill()
        family.wait(timeout=10)


def test_a_restart_starts_a_new_lifetime_and_outages_are_left_out():
    # one lifetime at 80 MB, a restarted one at 150 MB: no growth within either
    restarted = samples("service", 1, [80.0] * 12) + samples("service", 2, [150.0] * 12, start_t=12)
    assert all(g.held for g in judge_growth(restarted, GrowthBounds()))
    # connections drop to 0 while a killed process is down; left out, the fds series is flat
    dipped = [ResourceSample(i, "toxiproxy", 3, 30 * MB, 20 if 4 <= i <= 7 else 120, 0, 1) for i in range(20)]
    assert not all(g.held for g in judge_growth(dipped, GrowthBounds()))
    assert all(g.held for g in judge_growth(dipped, GrowthBounds(), outages=[Kill(4, "service", 9, 3.0).outage(0)]))
    short = judge_growth(samples("service", 4, [80.0, 300.0]), GrowthBounds())
    assert {g.held for g in short} == {None}


def test_a_server_gaining_backends_is_not_growth_but_backends_leaking_descriptors_are():
    """A PostgreSQL family is judged by descriptors per process: a pool that opens two more connections
    adds two backends of ~26 fds each (the shape a 30-minute soak met), one whose backends each hold
    60 more fds leaks."""
    def postgres(fds_per_backend: list[float], backends: list[int]) -> list[ResourceSample]:
        return [ResourceSample(i, "postgres", 7, 70 * MB, int(per * (n + 6)), n, n + 6)
                for i, (per, n) in enumerate(zip(fds_per_backend, backends, strict=True))]

    more_backends = postgres([26] * 20, [8] * 10 + [10] * 10)  # 364 -> 416 fds in total
    assert sum(s.open_fds for s in more_backends[-4:]) / 4 - more_backends[4].open_fds > GrowthBounds().fds
    assert all(g.held for g in judge_growth(more_backends, GrowthBounds()))
    leaking = postgres([26 + 5 * i for i in range(20)], [8] * 20)
    fds = next(g for g in judge_growth(leaking, GrowthBounds()) if g.metric == "open_fds_per_process")
    assert fds.held is False and fds.final > fds.limit


def test_descriptors_that_grow_with_connections_are_no_leak_but_descriptors_without_them_are():
    """The reads a one-minute soak met in CI: the proxy relayed 6 more of the service's pooled
    connections at the end (18 -> 30 sockets), so it held 107 -> 167 descriptors. The same descriptors
    with its connections flat are a leak."""
    def proxy(fds: list[int], connections: list[int]) -> list[ResourceSample]:
        return [ResourceSample(i, "toxiproxy", 5, 18 * MB, f, c, 1)
                for i, (f, c) in enumerate(zip(fds, connections, strict=True))]

    more_connections = proxy([107] * 10 + [167] * 10, [18] * 10 + [30] * 10)
    assert all(g.held for g in judge_growth(more_connections, GrowthBounds()))
    leaking = proxy([107] * 10 + [167] * 10, [18] * 20)
    fds = next(g for g in judge_growth(leaking, GrowthBounds()) if g.metric == "open_fds_per_process")
    assert fds.held is False and (fds.final, fds.limit) == (167, 157)
    fewer_connections = proxy([107] * 10 + [167] * 10, [30] * 10 + [18] * 10)
    assert not all(g.held for g in judge_growth(fewer_connections, GrowthBounds()))


def test_the_proxy_holds_no_more_descriptors_per_relayed_socket_than_the_bound_allows():
    """DESCRIPTORS_PER_CONNECTION must cover what the Toxiproxy-compatible server really holds, measured
    the way the soak measures it: relaying 20 connections adds 40 sockets and at most 5 fds each."""
    server = subprocess.Popen([sys.executable, "-m", "chaos.toxiproxy", "--port", "0"], stdout=subprocess.PIPE,
                              text=True)
    upstream = Upstream(echo=True)
    api = httpx.Client(base_url=f"http://127.0.0.1:{json.loads(server.stdout.readline())['port']}")
    clients: list = []
    try:
        listen = create_proxy(api, "echo", upstream.address)["listen"]
        before = measure("toxiproxy", server.pid, started_at=time.time())
        for _ in range(20):
            clients.append(connect(listen))
            clients[-1].sendall(b"ping")
            assert recv_exactly(clients[-1], 4) == b"ping"
        after = measure("toxiproxy", server.pid, started_at=time.time())
    finally:
        for client in [*clients, api]:
            client.close()
        upstream.close()
        server.terminate()
        server.wait(10)
    assert after.connections - before.connections == 40
    assert 40 < after.open_fds - before.open_fds <= DESCRIPTORS_PER_CONNECTION * 40


def test_growth_judged_only_over_short_lifetimes_does_not_hold():
    """A service killed every 30 s is judged over 30 s at a time, which shows no slow leak: without one
    lifetime spanning a fifth of the run the verdict cannot hold."""
    clean = clean_ledger()
    short_lives = [s for pid in range(10) for s in samples("service", pid, [80.0] * 12, start_t=12 * pid)]
    growth = judge_growth(short_lives, GrowthBounds())
    assert all(g.held for g in growth)
    verdict = verdict_of(clean, growth, run_s=120.0)
    assert verdict["no resource growth beyond the bounds"] == "held"
    assert verdict["every component judged over a long lifetime"] == "not held" and verdict["overall"] == "not held"
    long_life = short_lives + samples("service", 99, [80.0] * 40, start_t=120)  # 39 s of a 160 s run
    assert verdict_of(clean, judge_growth(long_life, GrowthBounds()), run_s=160.0)["overall"] == "held"


@pytest.mark.parametrize(("arguments", "complaint"), [
    (["--duration", "5m", "--calm-last", "5m"], "--calm-last (300s) must be shorter than --duration (300s)"),
    (["--kill-every", "1s"], "1s must be between 5s"),
    (["--duration", "soon"], "'soon' is not a duration"),
    (["--service", "nowhere/genchaos.yaml"], "contract file nowhere/genchaos.yaml does not exist"),
    (["--service-url", "ftp://127.0.0.1:8080"], "--service-url 'ftp://127.0.0.1:8080' is not an http(s) URL"),
])
def test_soak_refuses_bad_options_naming_the_problem(tmp_path: Path, arguments: list[str], complaint: str):
    finished = subprocess.run([sys.executable, "-m", "chaos", "soak", "--out", str(tmp_path), *arguments],
                              capture_output=True, text=True, timeout=60)
    assert finished.returncode == 2
    assert complaint in " ".join((finished.stdout + finished.stderr).split())
    assert "Traceback" not in finished.stderr and not (tmp_path / "stack.json").exists()


def _soak(out: Path, *extra: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "chaos", "soak", "--out", str(out), *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)


@pytest.mark.slow
def test_a_one_minute_soak_loses_and_duplicates_nothing_and_its_counts_add_up(tmp_path: Path):
    run = _soak(tmp_path, "--duration", "60s", "--kill-every", "15s", "--calm-last", "10s", "--users", "4")
    try:
        output = run.communicate(timeout=400)[0].decode()
    finally:
        if run.poll() is None:
            run.kill()
    document = json.loads((tmp_path / "soak.json").read_text())
    counts, kills = document["counts"], document["kills"]
    print(f"\n{counts}\nkills: {kills['total']} ({kills['service']} service, {kills['postgres']} postgres)")
    assert counts["accepted"] > 0
    assert counts["accepted"] == counts["completed"] + counts["failed"] + counts["lost"]
    assert kills["service"] >= 1 and kills["postgres"] >= 1 and kills["not_back"] == 0
    assert len(document["faults"]) >= 2
    assert {s["component"] for s in document["resources"]} == {
        "service", "postgres", "fal-emulator", "storage-emulator", "toxiproxy"}
    assert (tmp_path / "soak.html").read_text().count("<svg") == 3
    assert document["options"]["service"] == "genchaos-reference" and document["options"]["profile"] == "hardened"
    assert [c for c in document["checks"] if c["verdict"] != "held"] == [], output
    assert run.returncode == 0, output


@pytest.mark.slow
def test_a_soak_of_another_service_is_judged_through_its_contract(tmp_path: Path):
    """lumen names its routes, fields, states and bucket its own way, keeps its jobs in its own table, sends FAL
    no generation id and offers only the as_written profile: the soak reads each accepted generation back
    through lumen's API, ties FAL's jobs to them by their marked prompts, finds lumen's objects in lumen's
    bucket, and kills and samples the process lumen's contract started."""
    run = _soak(tmp_path, "--service", str(LUMEN_CONTRACT), "--duration", "40s", "--kill-every", "10s",
                "--calm-last", "10s", "--users", "4")
    try:
        output = run.communicate(timeout=400)[0].decode()
    finally:
        if run.poll() is None:
            run.kill()
    assert run.returncode in (0, 1), output
    document = json.loads((tmp_path / "soak.json").read_text())
    counts, kills = document["counts"], document["kills"]
    verdicts = {c["name"]: c["verdict"] for c in document["checks"]}
    print(f"\n{counts}\n{verdicts}")
    assert (document["options"]["service"], document["options"]["profile"]) == ("lumen", "as_written")
    assert counts["completed"] > 0 and counts["accepted"] == counts["completed"] + counts["failed"] + counts["lost"]
    assert counts["seen_by_fal"] > 0 and counts["stored_objects"] > 0
    assert kills["service"] >= 1 and kills["postgres"] >= 1 and kills["not_back"] == 0
    service_lifetimes = {s["pid"] for s in document["resources"] if s["component"] == "service"}
    assert {k["pid"] for k in kills["events"] if k["target"] == "service"} <= service_lifetimes
    assert "unmeasured" not in verdicts.values(), verdicts
    assert verdicts["generations were accepted"] == verdicts["counts add up"] == "held"
    assert (run.returncode == 0) == (document["verdict"] == "held"), output


@pytest.mark.slow
def test_a_soak_of_a_service_running_elsewhere_kills_only_postgres_and_says_what_it_could_not_measure(tmp_path: Path):
    """--service-url: the soak writes its stack file, waits for the service started with the environment
    `genchaos env` gives, and neither kills nor samples a process that is not its own."""
    port = free_port()
    run = _soak(tmp_path, "--service", str(LUMEN_CONTRACT), "--service-url", f"http://127.0.0.1:{port}",
                "--duration", "30s", "--kill-every", "8s", "--calm-last", "8s", "--users", "2")
    lumen = None
    try:
        stack = wait_for(lambda: (tmp_path / "stack.json").exists() and StackInfo.load(tmp_path / "stack.json"),
                         timeout_s=120, what="the soak's stack file")
        env = {**os.environ, **launch.service_environment(load_contract(LUMEN_CONTRACT), stack, {})}
        lumen = subprocess.Popen([sys.executable, "-m", "lumen", "--host", "127.0.0.1", "--port", str(port)],
                                 cwd=LUMEN_CONTRACT.parent, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        output = run.communicate(timeout=400)[0].decode()
    finally:
        for process in (run, lumen):
            if process is not None and process.poll() is None:
                process.kill()
                process.wait()
    document = json.loads((tmp_path / "soak.json").read_text())
    checks_by_name = {c["name"]: c for c in document["checks"]}
    assert document["counts"]["accepted"] > 0, output
    assert document["kills"]["postgres"] >= 1 and document["kills"]["service"] == 0
    assert "service" not in {s["component"] for s in document["resources"]}
    elsewhere = checks_by_name["the service's process killed and sampled"]
    assert elsewhere["verdict"] == "unmeasured" and "runs elsewhere" in elsewhere["observed"]


@pytest.mark.slow
def test_an_interrupted_soak_leaves_no_process_or_temp_dir_behind(tmp_path: Path):
    run = _soak(tmp_path, "--duration", "5m")
    try:
        stack = wait_for(lambda: (tmp_path / "stack.json").exists() and json.loads((tmp_path / "stack.json").read_text()),
                         timeout_s=120, what="the soak's stack file")
        time.sleep(5)  # Locust and the faults are running
        run.send_signal(signal.SIGINT)
        output = run.communicate(timeout=120)[0].decode()
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()
    assert run.returncode == 130, output
    assert "Traceback" not in output, output
    stack_dir = Path(stack["ca_bundle"]).parent.parent
    assert not stack_dir.exists(), f"{stack_dir} left behind"
    assert not psutil.pid_exists(stack["service_pid"]), "the service outlived the soak"
    port = int(stack["database_direct_url"].rsplit(":", 1)[1].split("/")[0])
    listening = {c.laddr.port for c in psutil.net_connections(kind="tcp") if c.status == psutil.CONN_LISTEN}
    assert port not in listening, "PostgreSQL outlived the soak"
