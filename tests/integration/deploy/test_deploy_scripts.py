"""deploy/up, deploy/smoke and deploy/down as an operator runs them (issue 22, item 1).

The cheap checks run in the suite: an empty state directory is refused with one line per
missing piece before anything is built or started; the compose file is read and the stack
taken down without any secret or state; a missing bind source is refused, not created.

The whole stack (``deploy/up --demo && deploy/smoke && deploy/down --purge``, about 5 minutes
with the images already built, 15 the first time on this 2-core machine) runs only when asked:
``HUB_DEPLOY_TEST=1 pytest -m deploy``. Its last measured output is in docs/OPERATIONS.md.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from hub.testing import devbroker

ROOT = Path(__file__).resolve().parents[3]
DEPLOY = ROOT / "deploy"
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def _need(condition: bool, reason: str) -> None:
    if condition:
        return
    if IN_CI:
        pytest.fail(f"required in CI: {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture
def compose_host() -> None:
    """Docker answers and a compose implementation is installed (Debian's docker-compose)."""
    _need(shutil.which("docker-compose") is not None, "docker-compose is not installed (bin/setup)")
    try:
        devbroker.ensure_docker(log=lambda _msg: None)
    except devbroker.BrokerUnavailable as exc:
        _need(False, str(exc))


@pytest.fixture
def project() -> Iterator[str]:
    """A compose project name of this test's own: nothing it does touches a deployed stack."""
    name = f"edxml-hub-test-{uuid.uuid4().hex[:8]}"
    yield name
    subprocess.run(["docker-compose", "-p", name, "-f", str(DEPLOY / "compose.yaml"), "down",
                    "--volumes", "--remove-orphans"], capture_output=True, timeout=120,
                   check=False, env=_env(name))


def _env(project: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EDXML_")}
    env.update(EDXML_PROJECT=project, **extra)
    return env


def _run(args: list[str], env: dict[str, str], timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=timeout, check=False,
                          env=env, cwd=ROOT)


@pytest.mark.usefixtures("compose_host")
def test_up_on_an_empty_state_directory_names_each_missing_piece_on_one_line_and_starts_nothing(
    tmp_path: Path, project: str,
) -> None:
    state = tmp_path / "state"

    # When an operator runs deploy/up on a fresh host with nothing prepared
    proc = _run([str(DEPLOY / "up"), "--state", str(state), "--no-build"], _env(project))

    # Then it stops with the state-prerequisite exit code, one line per missing piece
    assert proc.returncode == 3, proc.stderr
    missing = [line for line in proc.stderr.splitlines() if ": missing: " in line]
    expected = [
        "directory.toml: directory file not found",
        "keystore/000.00.01.H27.key.pem: the operator's signing key not found",
        "keystore/000.00.01.H27.pem: the operator's certificate chain not found",
        "trust/roots: no trust anchor",
        "secrets/erlang-cookie: secret not found",
        "secrets/ledger-password: secret not found",
        "secrets/broker-passwords.toml: secret not found",
        "secrets/key-passphrase: secret not found",
    ]
    assert len(missing) == len(expected)
    for text, line in zip(expected, missing, strict=True):
        assert f"{state}/{text}" in line
    assert "nothing was started" in proc.stderr.splitlines()[-1]
    assert "Traceback" not in proc.stderr + proc.stdout
    # and the state directory was laid out from the template, secrets private
    assert (state / "hub.toml").read_text() == (DEPLOY / "template" / "hub.toml").read_text()
    assert (state / "deploy.env").is_file()
    assert (state / "secrets").stat().st_mode & 0o077 == 0
    # and no container of the project exists
    listed = _run(["docker", "ps", "-aq", "--filter", f"label=com.docker.compose.project={project}"],
                  _env(project))
    assert listed.stdout.strip() == ""


@pytest.mark.usefixtures("compose_host")
def test_the_compose_file_is_read_and_the_stack_taken_down_without_any_secret_or_state(
    tmp_path: Path, project: str,
) -> None:
    # Given no secret in the environment and a state directory that does not exist
    env = _env(project, EDXML_STATE=str(tmp_path / "absent"))

    config = _run(["docker-compose", "-p", project, "-f", str(DEPLOY / "compose.yaml"),
                   "config", "-q"], env)
    down = _run([str(DEPLOY / "down")], env)

    assert config.returncode == 0, config.stderr
    assert down.returncode == 0, down.stderr
    assert "is down" in down.stdout
    assert not (tmp_path / "absent").exists()


@pytest.mark.broker
@pytest.mark.usefixtures("compose_host")
def test_a_missing_bind_source_is_refused_and_never_created_as_an_empty_directory(
    tmp_path: Path, project: str,
) -> None:
    try:
        devbroker.ensure_docker_and_image(log=lambda _msg: None)
    except devbroker.BrokerUnavailable as exc:
        _need(False, str(exc))
    state = tmp_path / "state"
    state.mkdir()

    # When a node is created while the state directory lacks its secrets
    proc = _run(["docker-compose", "-p", project, "-f", str(DEPLOY / "compose.yaml"),
                 "up", "--no-start", "--no-deps", "rabbit1"], _env(project, EDXML_STATE=str(state)))

    # Then Docker refuses the mount, naming the missing source, and creates nothing in its place
    assert proc.returncode != 0
    assert f"bind source path does not exist: {state}/secrets/" in proc.stderr
    assert list(state.iterdir()) == []


@pytest.mark.deploy
def test_the_deployed_stack_keeps_delivering_through_a_killed_node_and_consumer(
    tmp_path: Path,
) -> None:
    if not os.environ.get("HUB_DEPLOY_TEST"):
        pytest.skip("the whole stack takes 5-15 minutes: HUB_DEPLOY_TEST=1 pytest -m deploy")
    _need(os.geteuid() == 0, "deploy/up builds images with debootstrap: root only")
    existing = _run(["docker", "ps", "-aq", "--filter", "name=^edxml-hub-rabbit1$"], dict(os.environ))
    if existing.stdout.strip():
        pytest.skip("a deployed edxml-hub stack is running on this host (deploy/down first)")
    state = tmp_path / "state"
    env = {k: v for k, v in os.environ.items() if not k.startswith("EDXML_")}
    try:
        up = _run([str(DEPLOY / "up"), "--demo", "--state", str(state)], env, timeout=2400)
        assert up.returncode == 0, up.stdout[-3000:] + up.stderr[-3000:]
        smoke = _run([str(DEPLOY / "smoke"), "--state", str(state)], env, timeout=1200)
        assert smoke.returncode == 0, smoke.stdout[-3000:] + smoke.stderr[-3000:]
        assert "smoke passed" in smoke.stdout
    finally:
        down = _run([str(DEPLOY / "down"), "--purge", "--state", str(state)], env, timeout=300)
    assert down.returncode == 0, down.stderr
    assert not state.exists()
