"""The hub, the national-axis simulator and the connector, for the axis tests.

The simulator is always its own process (:class:`hub.testing.axis_sim.AxisSimulator`); the
connector runs in a thread of the test (:func:`connector_in_thread`) or, when the test kills it
with SIGKILL, as ``python -m hub axis run`` (:class:`ConnectorProcess`). The hub's intake runs
in a thread (``tests/integration/pipeline/harness.py``), against the real test broker.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from hub.axis import RunningConnector, build_connector
from hub.config import Settings, with_overrides
from hub.directory import Directory
from hub.edxml.build import build_status, response_for
from hub.edxml.model import Organization
from hub.edxml.parse import parse_packet
from hub.testing.axis_sim import AxisSimulator, System
from hub.testing.pki import KeyCache, PkiPaths, init_pki
from hub.testing.ports import free_port
from hub.trust.keystore import OrgSigner
from hub.trust.signing import sign_xml
from tests.integration.pipeline.harness import NOW, PKI_AT, hub_settings, settings_toml

SYSTEM_ID = "hub-h27"
SECRET = "axis-test-secret-not-real"
MINISTRY = "000.00.00.G09"
NGHE_AN = "000.00.00.H41"

_KEYS = KeyCache()


def make_axis_pki(base: Path) -> PkiPaths:
    """The pipeline tests' PKI plus seals for the bodies behind the axis (G09, H41)."""
    return init_pki(base, Directory.sample(), now=PKI_AT, keys=_KEYS, include_axis=True)


def axis_signer(pki: PkiPaths, organ_id: str) -> OrgSigner:
    paths = pki.axis_organizations[organ_id]
    return OrgSigner.from_files(organ_id, paths.key, paths.cert)


def axis_settings(pki: PkiPaths, tmp: Path, url: str, prefix: str, sim_url: str,
                  **axis: Any) -> Settings:
    base = hub_settings(pki, tmp, url, prefix)
    secret = tmp / "axis.secret"
    secret.write_text(SECRET + "\n", encoding="utf-8")
    return with_overrides(base, axis={
        "url": sim_url, "system_id": SYSTEM_ID, "secret_file": str(secret),
        "verify_tls": False, "timeout_s": 10.0, "poll_interval_s": 0.2, "retry_base_s": 0.05,
        "retry_max_s": 0.4, "failure_threshold": 3, "open_s": 0.8, "batch_max": 32, **axis})


def start_simulator(workdir: Path) -> AxisSimulator:
    # A port outside the ephemeral range: the outage tests start the simulator again on it.
    return AxisSimulator(workdir, [System(SYSTEM_ID, SECRET, ("H27",))],
                         port=free_port()).start()


@contextmanager
def connector_in_thread(settings: Settings) -> Iterator[RunningConnector]:
    running = build_connector(settings)
    thread = threading.Thread(target=running.connector.run, name="axis", daemon=True)
    thread.start()
    try:
        yield running
    finally:
        running.connector.stop.set()
        thread.join(timeout=30)
        running.close()


class ConnectorProcess:
    """``python -m hub --config FILE axis run`` as a child process (SIGKILL-able)."""

    def __init__(self, settings: Settings, workdir: Path) -> None:
        self.config = workdir / "connector.toml"
        a = settings.axis
        lines = [settings_toml(settings), "[axis]"]
        for name in type(a).model_fields:
            value = getattr(a, name)
            text = str(value).lower() if isinstance(value, bool) else json.dumps(value)
            lines.append(f"{name} = {text}")
        self.config.write_text("\n".join(lines) + "\n", encoding="utf-8")
        self.log = workdir / "connector.log"
        self.metrics_port = a.metrics_port
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> ConnectorProcess:
        env = {**os.environ, "HUB_LOG__FORMAT": "json", "HUB_LOG__LEVEL": "warning"}
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "hub", "--config", str(self.config), "axis", "run"],
                stdout=out, stderr=subprocess.STDOUT, env=env)
        return self

    def kill9(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)
        self.process = None

    def stop(self) -> int:
        if self.process is None:
            return 0
        self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout=60)
        self.process = None
        return code

    def metrics(self) -> dict[str, float]:
        """The connector's metrics, or {} while it does not answer."""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics",
                                        timeout=2) as r:
                text = r.read().decode()
        except OSError:
            return {}
        out: dict[str, float] = {}
        for line in text.splitlines():
            if line.startswith("hub_axis_") and " " in line:
                name, value = line.rsplit(" ", 1)
                out[name] = float(value)
        return out


def wait_until(predicate: Callable[[], bool], timeout: float, what: str,
               every: float = 0.1) -> None:
    """Wait for a condition another process makes true (polled, bounded; fails loudly)."""
    deadline = time.monotonic() + timeout
    pause = threading.Event()
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        pause.wait(every)


def signed_status(answered: bytes, reporter: OrgSigner, code: str) -> bytes:
    """``reporter``'s signed QCVN 102 status ``code`` about the document ``answered``."""
    document = parse_packet(answered)
    status = build_status(response_for=response_for(document),  # type: ignore[arg-type]
                          sender=Organization(reporter.organ_id), status_code=code,
                          timestamp=NOW + dt.timedelta(minutes=1), description="Đã tiếp nhận")
    return sign_xml(status, reporter)
