"""The test broker's image recipe is found from the package, so a fresh machine can build it."""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path

import pika
import pytest

from hub.testing import devbroker


def test_the_rabbitmq_image_build_script_is_found_where_the_repository_keeps_it() -> None:
    # A machine without the image builds it from this script; after the move of devbroker
    # into hub/testing/ the path pointed into hub/ and only machines that already had the
    # image could start a broker.
    assert devbroker.BUILD_SCRIPT.is_file()
    assert (devbroker.REPO_ROOT / "pyproject.toml").is_file()


def _held_elsewhere(lock: Path) -> bool:
    """Whether another process finds ``lock`` taken (util-linux ``flock -n`` fails at once)."""
    return subprocess.run(["flock", "-n", str(lock), "true"], check=False).returncode != 0


def test_starting_dockerd_or_building_the_image_holds_a_lock_other_processes_wait_for(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # pytest-xdist's workers each start a broker: without the lock two of them on a fresh
    # machine would start two dockerd or build the image twice at once.
    lock = tmp_path / "setup.lock"
    monkeypatch.setattr(devbroker, "_SETUP_LOCK", lock)
    seen: list[bool] = []
    monkeypatch.setattr(devbroker, "_ensure_docker", lambda _log: seen.append(_held_elsewhere(lock)))
    monkeypatch.setattr(devbroker, "_ensure_image",
                        lambda _tag, _log: seen.append(_held_elsewhere(lock)))
    devbroker.ensure_docker_and_image(log=lambda _msg: None)
    assert seen == [True, True]
    assert not _held_elsewhere(lock)  # released


def test_a_lock_file_that_cannot_be_opened_does_not_keep_a_broker_from_starting(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(devbroker, "_SETUP_LOCK", tmp_path / "missing" / "setup.lock")
    ran: list[str] = []
    monkeypatch.setattr(devbroker, "_ensure_docker", lambda _log: ran.append("docker"))
    monkeypatch.setattr(devbroker, "_ensure_image", lambda _tag, _log: ran.append("image"))
    devbroker.ensure_docker_and_image(log=lambda _msg: None)
    assert ran == ["docker", "image"]


@pytest.mark.slow
def test_without_docker_a_private_rabbitmq_server_process_boots_takes_a_connection_and_stops(
) -> None:
    # The fallback for a machine that refuses to run dockerd. Debian's /usr/sbin wrapper, run
    # as root, switched to the rabbitmq user: the node could not create its directories nor
    # share the Erlang cookie with rabbitmqctl, and the fallback never started.
    server = devbroker._rabbit_tool("rabbitmq-server")
    if not Path(server).exists():
        pytest.skip("rabbitmq-server is not installed on this machine")
    broker = devbroker.start_process()
    try:
        assert broker.kind == "process"
        connection = pika.BlockingConnection(pika.URLParameters(broker.url))
        channel = connection.channel()
        channel.queue_declare("fallback-check", auto_delete=True)
        connection.close()
    finally:
        broker.stop()
    # Nothing outlives it: neither its directories nor the epmd it started on its own port
    assert not broker.handle.base.exists()
    with pytest.raises(ConnectionRefusedError), socket.create_connection(
            ("127.0.0.1", int(broker.handle.env["ERL_EPMD_PORT"])), timeout=5):
        pass
