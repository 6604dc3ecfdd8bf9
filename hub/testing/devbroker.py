"""A real RabbitMQ for tests, the demo and the benchmarks, started the same way everywhere.

No container registry is reachable from the province's build hosts (nor from CI), so the image is
built locally from Debian packages by ``deploy/rabbitmq/build-image.sh`` and run through
testcontainers. This module:

* starts ``dockerd`` when no Docker engine answers (root only; Debian's ``docker.io``);
* builds the image when it is missing (about 45 s the first time, then reused);
* starts a :class:`RabbitMqContainer` with the settings this kind of machine needs
  (no ryuk, loopback host);
* falls back to a private ``rabbitmq-server`` process when Docker cannot run at all
  (:class:`PrivateRabbit`), so a machine without a container engine still gets a real broker.

It is development tooling: production brokers are operated, not started by the hub.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hub.testing.ports import free_port

# testcontainers reads these when it is imported: set them first. Ryuk's image cannot be pulled
# here, and this VM has /.dockerenv, so without docker_host mode testcontainers would talk to the
# bridge gateway instead of loopback (measured on the project's test machine).
os.environ.setdefault("TESTCONTAINERS_RYUK_DISABLED", "true")
os.environ.setdefault("TC_HOST", "127.0.0.1")
os.environ.setdefault("TESTCONTAINERS_CONNECTION_MODE", "docker_host")

IMAGE = os.environ.get("HUB_RABBITMQ_IMAGE", "edxml-hub/rabbitmq:3.10-bookworm")
REPO_ROOT = Path(__file__).resolve().parents[2]
BUILD_SCRIPT = REPO_ROOT / "deploy" / "rabbitmq" / "build-image.sh"
DOCKERD_LOG = Path(os.environ.get("HUB_DOCKERD_LOG", "/var/log/edxml-hub-dockerd.log"))


class BrokerUnavailable(RuntimeError):
    """No broker could be started; the message says why in one line."""


def _run(args: list[str], timeout: float = 60, env: dict[str, str] | None = None
         ) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=timeout, check=False,
                          env=env)


_RABBIT_BIN = Path("/usr/lib/rabbitmq/bin")
"""Debian's scripts themselves: ``/usr/sbin/rabbitmq-server`` and ``rabbitmqctl`` are a wrapper
that, run as root, switches to the ``rabbitmq`` user (``su``) — which can neither write a private
node's directories made by this process nor see its ``HOME`` (the Erlang cookie)."""


def _rabbit_tool(name: str) -> str:
    own = _RABBIT_BIN / name
    return str(own) if own.exists() else (shutil.which(name) or f"/usr/sbin/{name}")


def docker_ready() -> bool:
    if shutil.which("docker") is None:
        return False
    try:
        return _run(["docker", "info", "--format", "{{.ServerVersion}}"], timeout=20).returncode == 0
    except subprocess.TimeoutExpired:
        return False


_SETUP_LOCK = Path(tempfile.gettempdir()) / f"edxml-hub-devbroker-{os.getuid()}.lock"
"""Held while one process starts ``dockerd`` or builds the image, so that processes starting
brokers at once (pytest-xdist's workers, a bench beside the tests) wait for it instead of
starting a second daemon or building the image twice. One file per user: another user's file
could not be opened for writing."""


@contextlib.contextmanager
def _one_at_a_time() -> Iterator[None]:
    """The setup lock; where its file cannot be opened the caller runs unlocked, as before
    the lock existed, rather than failing a broker over it."""
    try:
        handle = open(_SETUP_LOCK, "a+b")  # noqa: SIM115 - closed by the with below
    except OSError:
        yield
        return
    with handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def ensure_docker(log: Any = print) -> None:
    """Make sure a Docker engine answers; start ``dockerd`` in the background if we may (one
    process at a time)."""
    with _one_at_a_time():
        _ensure_docker(log)


def _ensure_docker(log: Any) -> None:
    if docker_ready():
        return
    dockerd = shutil.which("dockerd")
    if dockerd is None or os.geteuid() != 0:
        raise BrokerUnavailable("no Docker engine answers and dockerd cannot be started here")
    log(f"starting dockerd in the background (log: {DOCKERD_LOG})")
    with open(DOCKERD_LOG, "ab") as out:
        subprocess.Popen(  # the daemon outlives us on purpose
            [dockerd], stdout=out, stderr=out, start_new_session=True
        )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # polling a daemon's start-up: there is no event to wait on
        if docker_ready():
            return
        time.sleep(0.2)
    raise BrokerUnavailable("dockerd did not become ready within 30 s")


def ensure_image(tag: str = IMAGE, log: Any = print) -> None:
    """Build the local RabbitMQ image unless an image with ``tag`` exists (one process at a
    time)."""
    with _one_at_a_time():
        _ensure_image(tag, log)


def _ensure_image(tag: str, log: Any) -> None:
    if _run(["docker", "image", "inspect", tag]).returncode == 0:
        return
    if not BUILD_SCRIPT.exists():
        raise BrokerUnavailable(f"image {tag} is missing and {BUILD_SCRIPT} is not here to build it")
    log(f"building RabbitMQ image {tag} from Debian packages (about a minute, once)")
    proc = subprocess.run(["bash", str(BUILD_SCRIPT), tag], capture_output=True, text=True,
                          timeout=900, check=False)
    if proc.returncode != 0:
        tail = (proc.stdout + proc.stderr).strip().splitlines()[-3:]
        raise BrokerUnavailable(f"building {tag} failed: {' | '.join(tail)}")


@dataclass
class RunningBroker:
    """A started broker: its AMQP URL and a handle to stop, kill, pause or restart it."""

    url: str
    host: str
    port: int
    kind: str
    """``container`` (testcontainers) or ``process`` (private rabbitmq-server)."""
    handle: Any

    @property
    def container_id(self) -> str | None:
        if self.kind != "container":
            return None
        return str(self.handle.get_wrapped_container().id)

    def docker(self, *args: str) -> None:
        cid = self.container_id
        if cid is None:
            raise BrokerUnavailable("only a container broker can be paused or restarted by docker")
        proc = _run(["docker", *args, cid], timeout=120)
        if proc.returncode != 0:
            raise BrokerUnavailable(f"docker {' '.join(args)} failed: {proc.stderr.strip()}")

    def exec(self, *args: str) -> str:
        """Run a command inside the broker container (``rabbitmqctl stop_app`` …)."""
        cid = self.container_id
        if cid is None:
            raise BrokerUnavailable("only a container broker supports exec")
        proc = _run(["docker", "exec", cid, *args], timeout=120)
        if proc.returncode != 0:
            raise BrokerUnavailable(f"{' '.join(args)} failed: {proc.stderr.strip()[:200]}")
        return proc.stdout

    def stop(self) -> None:
        if self.kind == "container":
            self.handle.stop()
        else:
            self.handle.stop()


def ensure_docker_and_image(tag: str = IMAGE, log: Any = print) -> None:
    """:func:`ensure_docker` then :func:`ensure_image`."""
    ensure_docker(log)
    ensure_image(tag, log)


def start_container(tag: str = IMAGE, log: Any = print, **kwargs: Any) -> RunningBroker:
    """Start a RabbitMQ container through testcontainers (building the image if needed)."""
    ensure_docker_and_image(tag, log)
    from testcontainers.community.rabbitmq import RabbitMqContainer

    container = RabbitMqContainer(tag, **kwargs)
    try:
        container.start()
    except Exception as exc:  # testcontainers raises many kinds; report one line
        with contextlib.suppress(Exception):
            container.stop()
        raise BrokerUnavailable(f"RabbitMQ container did not start: {exc}") from None
    host = container.get_container_host_ip()
    port = int(container.get_exposed_port(5672))
    return RunningBroker(f"amqp://guest:guest@{host}:{port}/", host, port, "container", container)


class PrivateRabbit:
    """A private ``rabbitmq-server`` process (fallback when no container engine can run)."""

    def __init__(self) -> None:
        self.base = Path(tempfile.mkdtemp(prefix="edxml-hub-rabbit-"))
        ports: set[int] = set()
        while len(ports) < 3:  # AMQP, distribution and epmd: three different ports
            ports.add(free_port())
        self.port, dist_port, epmd_port = sorted(ports)
        self.node = f"hub{self.port}@localhost"
        self.env = dict(
            os.environ,
            RABBITMQ_NODENAME=self.node,
            RABBITMQ_NODE_PORT=str(self.port),
            RABBITMQ_DIST_PORT=str(dist_port),
            RABBITMQ_MNESIA_BASE=str(self.base / "mnesia"),
            RABBITMQ_LOG_BASE=str(self.base / "log"),
            ERL_EPMD_PORT=str(epmd_port),
            RABBITMQ_ENABLED_PLUGINS_FILE=str(self.base / "enabled_plugins"),
            RABBITMQ_CONFIG_FILE=str(self.base / "rabbitmq"),
            HOME=str(self.base),
        )
        (self.base / "enabled_plugins").write_text("[].\n")
        (self.base / "rabbitmq.conf").write_text(
            f"listeners.tcp.default = {self.port}\nloopback_users.guest = false\n"
        )
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60) -> None:
        server = _rabbit_tool("rabbitmq-server")
        if not Path(server).exists():
            raise BrokerUnavailable("rabbitmq-server is not installed")
        self.proc = subprocess.Popen([server], env=self.env, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                ctl = _run([_rabbit_tool("rabbitmqctl"), "-n", self.node, "await_startup",
                            "--timeout", "5"], 20, self.env)
            except subprocess.TimeoutExpired:
                continue
            if ctl.returncode == 0:
                return
            if self.proc.poll() is not None:
                raise BrokerUnavailable("private rabbitmq-server exited during start-up")
        raise BrokerUnavailable("private rabbitmq-server did not start in time")

    def stop(self) -> None:
        """Stop the node, then its own epmd (started on ``ERL_EPMD_PORT`` with the node, it would
        outlive it), and remove its directories."""
        with contextlib.suppress(subprocess.TimeoutExpired):
            _run([_rabbit_tool("rabbitmqctl"), "-n", self.node, "stop"], 60, self.env)
        if self.proc is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=30)
            if self.proc.poll() is None:
                self.proc.kill()
        epmd = shutil.which("epmd") or "/usr/bin/epmd"
        if Path(epmd).exists():
            with contextlib.suppress(subprocess.TimeoutExpired):
                _run([epmd, "-kill"], 10, self.env)  # the epmd on this node's ERL_EPMD_PORT
        shutil.rmtree(self.base, ignore_errors=True)


def start_process() -> RunningBroker:
    rabbit = PrivateRabbit()
    try:
        rabbit.start()
    except BaseException:
        rabbit.stop()  # a node that did not boot leaves no process nor directory behind
        raise
    return RunningBroker(f"amqp://guest:guest@127.0.0.1:{rabbit.port}/", "127.0.0.1",
                         rabbit.port, "process", rabbit)


def start_broker(log: Any = print) -> RunningBroker:
    """Start a broker: testcontainers first; a private process only when Docker cannot run."""
    try:
        return start_container(log=log)
    except BrokerUnavailable as exc:
        if os.environ.get("HUB_NO_PROCESS_FALLBACK"):
            raise
        log(f"container broker unavailable ({exc}); falling back to a private rabbitmq-server")
        return start_process()


def amqp_answers(url: str, timeout: float = 2.0) -> bool:
    """True when something accepts a TCP connection at the URL's host and port."""
    from urllib.parse import urlparse

    parsed = urlparse(url)
    try:
        with socket.create_connection((parsed.hostname or "127.0.0.1", parsed.port or 5672),
                                      timeout=timeout):
            return True
    except OSError:
        return False


@contextlib.contextmanager
def broker_for(url: str | None, log: Any = print) -> Iterator[tuple[str, RunningBroker | None]]:
    """Yield a broker URL: ``url`` when it answers, otherwise a freshly started broker."""
    if url and amqp_answers(url):
        yield url, None
        return
    log(f"no broker answers at {url}; starting one the same way the tests do")
    running = start_broker(log)
    try:
        yield running.url, running
    finally:
        running.stop()
