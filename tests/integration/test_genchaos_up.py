"""`genchaos up` as an outside check uses it: start, read the stack file, generate, SIGTERM, nothing left."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil

from chaos.stack.embedded import StackInfo
from tests.support import auth_headers, submit, wait_terminal


def test_up_serves_a_generation_and_cleans_up_on_sigterm(tmp_path: Path):
    stack_file = tmp_path / "stack.json"
    up = subprocess.Popen([sys.executable, "-m", "chaos", "up", "--stack-file", str(stack_file), "--timing", "fast"],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 90
        while not stack_file.exists():
            assert up.poll() is None, up.stdout.read().decode()
            assert time.monotonic() < deadline, "stack file never appeared"
            time.sleep(0.2)
        info = StackInfo.load(stack_file)
        assert set(json.loads(stack_file.read_text())["proxies"]) == {"fal", "postgres", "storage"}
        children = psutil.Process(up.pid).children(recursive=True)
        assert len(children) >= 4

        headers = auth_headers(info)
        accepted = submit(info, headers)
        assert accepted.status_code == 202, accepted.text
        assert wait_terminal(info, headers, accepted.json()["id"])["status"] == "completed"

        up.send_signal(signal.SIGTERM)
        assert up.wait(timeout=60) == 0
    finally:
        if up.poll() is None:
            os.killpg(up.pid, signal.SIGKILL)
    gone, alive = psutil.wait_procs(children, timeout=10)
    assert alive == [], f"left running: {[p.pid for p in alive]}"
    assert not stack_file.exists()
    assert not Path(info.ca_bundle).exists(), "the stack's temp directory was left behind"


def test_up_rejects_an_unknown_profile():
    result = subprocess.run([sys.executable, "-m", "chaos", "up", "--profile", "nonsense"], capture_output=True, text=True)
    assert result.returncode == 2
    assert "invalid choice: 'nonsense'" in result.stderr
