"""``examples/node``: a handler that keeps failing stops the receiver instead of spinning.

The Node agency does what ``hub.client`` does (``HandlerFailed``): a failing handler is retried
in place a few times with a growing pause, then the message goes back to its queue (nack with
requeue) and the program stops with a nonzero exit and one line on stderr; the document waits in
the inbox until the agency's system is fixed. Here the failure is the agency verifying again
under a root it has not updated (a stale ``ROOT_PEM``), on the real broker with a running hub.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from hub.directory import Directory
from hub.testing.pki import KeyCache, PkiPaths, init_pki
from tests.integration.pipeline.harness import (
    FINANCE,
    HOME_AFFAIRS,
    RunningHub,
    hub_settings,
    running_hub,
)
from tests.node_example import EXAMPLE, require_node, run_node

pytestmark = pytest.mark.broker


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> PkiPaths:
    """Issued now: the Node program and xmlsec1 judge certificates at the wall clock."""
    return init_pki(tmp_path_factory.mktemp("node-failure-pki"), Directory.sample(),
                    keys=KeyCache())


@pytest.fixture
def hub(pki: PkiPaths, broker_url: str, names: str, tmp_path: Path) -> Iterator[RunningHub]:
    settings = hub_settings(pki, tmp_path / "hub", broker_url, names)
    with running_hub(settings, clock=lambda: datetime.now(UTC)) as running:
        yield running


def _agency(pki: PkiPaths, url: str, prefix: str, organ_id: str, store: Path,
            root: Path | None = None) -> dict[str, str]:
    org = pki.organizations[organ_id]
    return {"AMQP_URL": url, "HUB_PREFIX": prefix, "ORGAN_ID": organ_id, "KEY_PEM": str(org.key),
            "CERT_PEM": str(org.cert), "ROOT_PEM": str(root or pki.root_cert),
            "CA_PEM": str(pki.issuing_ca_cert), "STORE_DIR": str(store)}


def test_a_node_handler_that_keeps_failing_stops_with_one_line_and_leaves_the_document_queued(
        pki: PkiPaths, hub: RunningHub, broker_url: str, tmp_path: Path) -> None:
    node = require_node()
    agency = str(EXAMPLE / "agency.js")
    prefix = hub.names.prefix
    finance = _agency(pki, broker_url, prefix, FINANCE, tmp_path / "finance")
    run_node(node, [agency, "send", "--to", HOME_AFFAIRS, "--number", "32", "--notation",
                    "STC-KH", "--subject", "V/v thử lỗi"], finance, tmp_path)
    hub.wait_acked(1)

    # Given Home Affairs verifies again under a root that is not the hub's (stale ROOT_PEM)
    stale = _agency(pki, broker_url, prefix, HOME_AFFAIRS, tmp_path / "home-affairs",
                    root=pki.public_root_cert)
    # When it receives, waiting for one document with a short idle timeout
    result = subprocess.run(
        [node, agency, "receive", "--count", "1", "--idle-ms", "2000", "--retries", "2",
         "--retry-delay-ms", "50"],
        cwd=tmp_path, env={**os.environ, **stale}, capture_output=True, text=True, timeout=60,
        check=False)

    # Then it stops on its own: a nonzero exit and one line saying what happened
    assert result.returncode != 0, result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("agency: handler failed 3 time(s) for message "), result.stderr
    assert f"from {prefix}.org.{HOME_AFFAIRS}.inbox; the message was returned to the queue" in last
    assert "xmlsec1 --verify failed" in last
    assert result.stderr.count("handler failed") == 3  # two retries logged, then the stop
    assert "    at " not in result.stderr  # no stack trace
    assert not list((tmp_path / "home-affairs").glob("*.edxml"))

    # And the document waits in the inbox: once the root is fixed it is received and answered
    fixed = _agency(pki, broker_url, prefix, HOME_AFFAIRS, tmp_path / "home-affairs")
    again = run_node(node, [agency, "receive", "--count", "1", "--idle-ms", "20000"], fixed,
                     tmp_path)
    stats = [line["receive"] for line in again if "receive" in line]
    assert stats == [{"taken": 1, "handled": 1, "duplicates": 0, "failed": 0}]
    assert len(list((tmp_path / "home-affairs").glob("*.edxml"))) == 1


def test_a_node_receiver_with_nothing_to_take_stops_after_the_idle_time(
        pki: PkiPaths, hub: RunningHub, broker_url: str, tmp_path: Path) -> None:
    node = require_node()
    home = _agency(pki, broker_url, hub.names.prefix, HOME_AFFAIRS, tmp_path / "home-affairs")
    lines = run_node(node, [str(EXAMPLE / "agency.js"), "receive", "--count", "1", "--idle-ms",
                            "300"], home, tmp_path, timeout=30)
    assert [line["receive"] for line in lines if "receive" in line] == [
        {"taken": 0, "handled": 0, "duplicates": 0, "failed": 0}]
