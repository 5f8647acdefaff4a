"""Headless Chromium driven over the DevTools protocol: open a page, collect what its console and
runtime reported as errors, read element boxes and take screenshots of page regions."""

from __future__ import annotations

import base64
import contextlib
import itertools
import json
import os
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from websockets.sync.client import connect

STARTUP_TIMEOUT_S = 30.0
CALL_TIMEOUT_S = 30.0
WINDOW = (1280, 2400)


class Chromium:
    """One headless browser process with one page; a context manager that always stops the browser."""

    def __init__(self, binary: str) -> None:
        self._binary = binary
        self._ids = itertools.count(1)
        self.events: list[dict[str, Any]] = []

    def __enter__(self) -> Chromium:
        self._profile = tempfile.TemporaryDirectory(prefix="genchaos-chromium-")
        self._process = subprocess.Popen(
            [self._binary, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--force-color-profile=srgb", "--hide-scrollbars", f"--window-size={WINDOW[0]},{WINDOW[1]}",
             f"--user-data-dir={self._profile.name}", "--remote-debugging-address=127.0.0.1",
             "--remote-debugging-port=0", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True)  # its helpers (zygote, crashpad) go with it, as one process group
        try:
            self._socket = connect(self._devtools_url(), max_size=64 * 2**20, open_timeout=STARTUP_TIMEOUT_S)
            target = self._call("Target.createTarget", url="about:blank")["targetId"]
            self._session = self._call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
            for domain in ("Runtime", "Log", "Page"):
                self._call(f"{domain}.enable", session=True)
            self._call("Emulation.setDeviceMetricsOverride", session=True, width=WINDOW[0], height=WINDOW[1],
                       deviceScaleFactor=1, mobile=False)
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        if getattr(self, "_socket", None) is not None:
            self._socket.close()
        self._signal_group(signal.SIGTERM)
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait(timeout=10)
        self._signal_group(signal.SIGKILL)  # a helper still writing to the profile would make its removal fail
        for _ in range(50):
            try:
                self._profile.cleanup()
                return
            except OSError:
                time.sleep(0.1)
        self._profile.cleanup()

    def _signal_group(self, signum: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self._process.pid, signum)

    def _devtools_url(self) -> str:
        """Chromium writes its DevTools port and browser path to DevToolsActivePort once it listens."""
        port_file = Path(self._profile.name) / "DevToolsActivePort"
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"chromium exited with status {self._process.returncode}")
            lines = port_file.read_text().splitlines() if port_file.exists() else []
            if len(lines) >= 2:
                return f"ws://127.0.0.1:{lines[0]}{lines[1]}"
            time.sleep(0.1)
        raise RuntimeError(f"chromium did not open its DevTools port within {STARTUP_TIMEOUT_S:g}s")

    def _call(self, method: str, session: bool = False, **params: Any) -> dict[str, Any]:
        """Send one command and wait for its answer, keeping every event that arrives meanwhile."""
        message_id = next(self._ids)
        message = {"id": message_id, "method": method, "params": params}
        if session:
            message["sessionId"] = self._session
        self._socket.send(json.dumps(message))
        deadline = time.monotonic() + CALL_TIMEOUT_S
        while True:
            reply = json.loads(self._socket.recv(timeout=max(0.1, deadline - time.monotonic())))
            if reply.get("id") == message_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def open(self, url: str) -> None:
        """Navigate and wait for this navigation's load event."""
        seen = len(self.events)
        self._call("Page.navigate", session=True, url=url)
        deadline = time.monotonic() + CALL_TIMEOUT_S
        while not any(e.get("method") == "Page.loadEventFired" for e in self.events[seen:]):
            if time.monotonic() > deadline:
                raise TimeoutError(f"{url} did not finish loading")
            self.events.append(json.loads(self._socket.recv(timeout=max(0.1, deadline - time.monotonic()))))

    def errors(self) -> list[str]:
        """Console errors, uncaught exceptions and browser log errors (failed loads) seen so far."""
        found = []
        for event in self.events:
            method, params = event.get("method"), event.get("params", {})
            if method == "Runtime.exceptionThrown":
                found.append(params["exceptionDetails"].get("text", "exception"))
            elif method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
                found.append(" ".join(str(a.get("value", a.get("description"))) for a in params.get("args", [])))
            elif method == "Log.entryAdded" and params["entry"].get("level") == "error":
                found.append(f"{params['entry'].get('source')}: {params['entry'].get('text')}")
        return found

    def evaluate(self, expression: str) -> Any:
        result = self._call("Runtime.evaluate", session=True, expression=expression, returnByValue=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def boxes(self, selector: str) -> list[dict[str, float]]:
        """Page coordinates of every element matching ``selector``, with its aria-label."""
        return self.evaluate(
            f"[...document.querySelectorAll({json.dumps(selector)})].map(e => {{"
            "const r = e.getBoundingClientRect();"
            "return {label: e.getAttribute('aria-label'), x: r.x + window.scrollX, y: r.y + window.scrollY,"
            " width: r.width, height: r.height}; })")

    def screenshot(self, box: dict[str, float] | None = None) -> bytes:
        """A PNG of a page region (the whole page without ``box``)."""
        if box is None:
            size = self._call("Page.getLayoutMetrics", session=True)["cssContentSize"]
            box = {"x": 0, "y": 0, "width": size["width"], "height": size["height"]}
        clip = {key: box[key] for key in ("x", "y", "width", "height")} | {"scale": 1}
        data = self._call("Page.captureScreenshot", session=True, format="png", clip=clip,
                          captureBeyondViewport=True)["data"]
        return base64.b64decode(data)
