"""``hub run`` against queues the broker will not declare as configured: it ends with the
broker's reason in one line and exit code 3 (systemd's ``RestartPreventExitStatus=3``: no
restart loop), as ``hub topology apply`` does — never a "broker_lost" reconnect for ever."""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path

import pytest

from hub.app import topology_for
from hub.broker import connect
from hub.config import load_settings
from hub.directory import Directory
from hub.ops.cli import EXIT_CONFIG, main
from tests.integration.pipeline.harness import make_pki

pytestmark = pytest.mark.broker

GIVE_UP_S = 120.0
"""How long `hub run` may take to give up before the test stops it (SIGTERM: it exits 0)."""


def _config(tmp_path: Path, name: str, broker_url: str, prefix: str, *, quorum: bool) -> Path:
    pki = make_pki(tmp_path / "pki")
    cfg = tmp_path / name
    cfg.write_text(
        f"[broker]\nurl = '{broker_url}'\nprefix = '{prefix}'\n"
        f"quorum = {'true' if quorum else 'false'}\n"
        f"[ledger]\nurl = 'sqlite:///{tmp_path / 'ledger.sqlite3'}'\n"
        f"[trust]\nroots = ['{pki.root_cert}']\nintermediates = ['{pki.issuing_ca_cert}']\n"
        f"crls = ['{pki.crl_der}', '{pki.root_crl_der}']\nfetch_crls = false\n"
        f"public_roots = ['{pki.public_root_cert}']\npolicy_oids = ['{pki.policy_oid}']\n"
        f"[hub]\nkeystore = '{pki.keystore}'\n", encoding="utf-8")
    return cfg


def test_hub_run_on_queues_declared_with_other_arguments_exits_3_naming_the_conflict(
    broker_url: str, names: str, tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    # Given the hub's queues declared as classic queues
    classic = _config(tmp_path, "classic.toml", broker_url, names, quorum=False)
    assert main(["--config", str(classic), "topology", "apply"]) == 0
    # and settings that declare them as quorum queues
    quorum = _config(tmp_path, "quorum.toml", broker_url, names, quorum=True)
    capsys.readouterr()
    # When `hub run` starts with those settings (it takes SIGTERM and SIGINT: given back to
    # pytest after; a watchdog stops a run that would retry for ever)
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    watchdog = threading.Timer(GIVE_UP_S, os.kill, (os.getpid(), signal.SIGTERM))
    watchdog.start()
    try:
        code = main(["--config", str(quorum), "run"])
    finally:
        watchdog.cancel()
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
        settings = load_settings(classic)
        conn = connect(broker_url, "topology conflict cleanup")
        conn.delete(topology_for(settings, Directory.sample()))
        conn.close()
    # Then it stops at once: a configuration error, in one line with the broker's reason
    captured = capsys.readouterr()
    err = [line for line in captured.err.splitlines() if line.startswith("hub: ")]
    assert code == EXIT_CONFIG, captured.err[-2000:]
    assert len(err) == 1, err
    assert err[0].startswith("hub: configuration: declare: 406 PRECONDITION_FAILED"), err
    assert "inequivalent arg" in err[0]
    assert "Traceback" not in captured.err
    assert "broker_lost" not in captured.err
