"""A three-node RabbitMQ cluster of the local image, for tests, benchmarks and rehearsals.

RabbitMQ's own clustering is the hub's only clustering (issue 10): quorum queues replicated on
every node, stateless consumers anywhere, the ledger in PostgreSQL. This module starts such a
cluster with the docker CLI, the way an operator would by hand:

* one user-defined docker network per cluster (its own DNS: every node resolves the others by
  their alias ``rabbit1``, ``rabbit2`` …, which is also the node's hostname, so the node names
  are ``rabbit@rabbit1`` …);
* the same Erlang cookie on every node (written to ``$HOME/.erlang.cookie`` before the server
  starts, so ``rabbitmqctl`` inside the container finds it too);
* nodes 2…n ``stop_app`` → ``join_cluster rabbit@rabbit1`` → ``start_app``;
* each node's 5672 published on 127.0.0.1 at a port chosen once, so a node killed and started
  again keeps its URL.

It also breaks the cluster on purpose (``docker kill``/``start``, ``pause``/``unpause``,
``network disconnect``/``connect``) and reads the quorum-queue leaders
(``rabbitmqctl list_queues name leader``). Development tooling, like :mod:`hub.testing.devbroker`:
production clusters are operated (see ``deploy/`` and ``docs/OPERATIONS.md``), not started by
the hub.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from hub.testing.devbroker import IMAGE, BrokerUnavailable, ensure_docker_and_image
from hub.testing.ports import free_port

__all__ = [
    "CLUSTER_CONF",
    "Cluster",
    "ClusterUnavailable",
    "Node",
    "QueueInfo",
    "cluster",
    "start_cluster",
]

Log = Callable[[str], None]

CLUSTER_CONF = """\
loopback_users.guest = false
listeners.tcp.default = 5672
# Quorum queues elect a new leader within seconds on their own (Ra's failure detector); the
# Erlang distribution notices a silent peer only after net_ticktime. The default 60 s would keep
# the deliveries held by a paused node's consumers locked that long: 10 s is enough on one LAN.
net_ticktime = 10
# When a partition ends, the smaller side restarts and rejoins by itself. Measured: with
# pause_minority a node woken from ``docker pause`` reconnects before it ever notices it was in
# a minority, so the partition Mnesia reports afterwards is never healed; autoheal heals it.
# Quorum queues stay safe either way (Raft needs a majority to commit).
cluster_partition_handling = autoheal
# Tests run several nodes on one machine: cap each node's memory use.
vm_memory_high_watermark.absolute = 512MiB
disk_free_limit.absolute = 50MB
"""
"""``rabbitmq.conf`` of the test cluster's nodes (deploy/rabbitmq/rabbitmq.conf is the production
one: same partition handling, peer discovery instead of ``join_cluster``)."""


class ClusterUnavailable(BrokerUnavailable):
    """The cluster could not be started or did not reach the wanted state in time."""


def _run(args: Sequence[str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(list(args), capture_output=True, text=True, timeout=timeout,
                              check=False)
    except subprocess.TimeoutExpired:
        return subprocess.CompletedProcess(list(args), 124, "", f"timed out after {timeout} s")


def _docker(*args: str, timeout: float = 60) -> str:
    proc = _run(["docker", *args], timeout)
    if proc.returncode != 0:
        raise ClusterUnavailable(f"docker {' '.join(args[:3])}: {proc.stderr.strip()[:300]}")
    return proc.stdout


@dataclass(frozen=True, slots=True)
class Node:
    """One broker node: its short name (hostname and network alias), container and host port."""

    name: str
    container: str
    port: int

    @property
    def node_name(self) -> str:
        """The Erlang node name (``rabbit@rabbit1``)."""
        return f"rabbit@{self.name}"

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}/"


@dataclass(frozen=True, slots=True)
class QueueInfo:
    """A queue as ``rabbitmqctl list_queues`` shows it."""

    name: str
    leader: str | None
    """Erlang node name of the quorum queue's leader (None for a classic queue)."""
    messages: int
    members: tuple[str, ...]


@dataclass
class Cluster:
    """A running cluster: its nodes, network and cookie, and the ways to break and heal it."""

    network: str
    nodes: tuple[Node, ...]
    image: str
    conf_dir: Path
    log: Log = field(default=lambda _msg: None)
    paused: set[str] = field(default_factory=set)
    cut: set[str] = field(default_factory=set)
    killed: set[str] = field(default_factory=set)

    # -- reading ---------------------------------------------------------------------------------
    @property
    def urls(self) -> tuple[str, ...]:
        return tuple(n.url for n in self.nodes)

    def node(self, name: str) -> Node:
        """A node by short name (``rabbit2``) or Erlang node name (``rabbit@rabbit2``)."""
        short = name.split("@", 1)[-1]
        for n in self.nodes:
            if n.name == short:
                return n
        raise KeyError(name)

    def healthy_nodes(self) -> tuple[Node, ...]:
        """Nodes this object has not broken (no kill, pause or cut pending)."""
        broken = self.paused | self.cut | self.killed
        return tuple(n for n in self.nodes if n.name not in broken)

    def ctl(self, node: Node, *args: str, timeout: float = 60, tool: str = "rabbitmqctl") -> str:
        """Run a RabbitMQ CLI tool inside ``node``'s container and return its output."""
        proc = _run(["docker", "exec", node.container, tool, *args], timeout)
        if proc.returncode != 0:
            detail = (proc.stderr or proc.stdout).strip().splitlines()
            raise ClusterUnavailable(f"{node.name}: {tool} {' '.join(args[:2])}: "
                                     f"{' | '.join(detail[-3:])[:300]}")
        return proc.stdout

    def running_nodes(self, via: Node) -> set[str]:
        """Erlang names of the nodes ``via`` sees running in its cluster."""
        out = self.ctl(via, "cluster_status", "--formatter", "json", timeout=30)
        return set(json.loads(out).get("running_nodes", []))

    def queues(self, *, prefix: str = "", via: Node | None = None) -> list[QueueInfo]:
        """Every queue whose name starts with ``prefix``, with its leader and depth."""
        via = via or self.healthy_nodes()[0]
        out = self.ctl(via, "list_queues", "name", "leader", "messages", "members",
                       "--formatter", "json", timeout=60)
        infos: list[QueueInfo] = []
        for row in json.loads(out or "[]"):
            name = str(row.get("name", ""))
            if not name.startswith(prefix):
                continue
            leader = row.get("leader")
            members = row.get("members") or []
            infos.append(QueueInfo(name, str(leader) if leader and leader != "" else None,
                                   int(row.get("messages") or 0),
                                   tuple(str(m) for m in members) if isinstance(members, list)
                                   else ()))
        return infos

    def leader_of(self, queue: str, via: Node | None = None) -> Node:
        """The node that leads the quorum queue ``queue``."""
        for info in self.queues(prefix=queue, via=via):
            if info.name == queue and info.leader:
                return self.node(info.leader)
        raise ClusterUnavailable(f"queue {queue} has no leader (is it a quorum queue?)")

    def busiest_queue(self, prefix: str, via: Node | None = None) -> QueueInfo:
        """The quorum queue under ``prefix`` that holds the most messages right now."""
        infos = [q for q in self.queues(prefix=prefix, via=via) if q.leader]
        if not infos:
            raise ClusterUnavailable(f"no quorum queue under {prefix!r}")
        return max(infos, key=lambda q: q.messages)

    # -- waiting ---------------------------------------------------------------------------------
    def _until(self, check: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        last = ""
        while True:  # polling brokers' state: RabbitMQ sends no event to the host for it
            try:
                if check():
                    return
            except ClusterUnavailable as exc:
                last = str(exc)
            if time.monotonic() > deadline:
                raise ClusterUnavailable(f"{what} not reached within {timeout:.0f} s {last}".strip())
            time.sleep(0.5)

    def await_node(self, node: Node, timeout: float = 90) -> None:
        """Wait until ``node`` has booted (RabbitMQ application running)."""
        def booted() -> bool:
            self.ctl(node, "await_startup", "--timeout", "10", timeout=20)
            return True

        self._until(booted, timeout, f"{node.name} start-up")

    def wait_healthy(self, timeout: float = 120) -> None:
        """Wait until every node runs and sees all the others (a fully formed cluster)."""
        everyone = {n.node_name for n in self.nodes}

        def formed() -> bool:
            return all(self.running_nodes(n) == everyone for n in self.nodes)

        self._until(formed, timeout, f"cluster of {len(self.nodes)} running nodes")

    # -- breaking and healing --------------------------------------------------------------------
    def kill(self, node: Node) -> None:
        """``docker kill`` (SIGKILL): the node vanishes without closing anything."""
        _docker("kill", node.container)
        self.killed.add(node.name)
        self.log(f"killed {node.name}")

    def start(self, node: Node, timeout: float = 90) -> None:
        """Start a killed node again; it rejoins the cluster from its own data directory."""
        _docker("start", node.container)
        self.killed.discard(node.name)
        self.await_node(node, timeout)
        self.log(f"started {node.name}")

    def pause(self, node: Node) -> None:
        """``docker pause`` (cgroup freezer): the node stops answering but keeps its sockets."""
        _docker("pause", node.container)
        self.paused.add(node.name)
        self.log(f"paused {node.name}")

    def unpause(self, node: Node) -> None:
        _docker("unpause", node.container)
        self.paused.discard(node.name)
        self.log(f"unpaused {node.name}")

    def disconnect(self, node: Node) -> None:
        """Cut ``node`` from the cluster network (peers and clients lose it at once)."""
        _docker("network", "disconnect", "--force", self.network, node.container)
        self.cut.add(node.name)
        self.log(f"cut {node.name} from {self.network}")

    def reconnect(self, node: Node) -> None:
        """Put ``node`` back on the network under the same alias (its peers resolve it again)."""
        _docker("network", "connect", "--alias", node.name, self.network, node.container)
        self.cut.discard(node.name)
        self.log(f"reconnected {node.name}")

    def heal(self, timeout: float = 120) -> None:
        """Undo every kill, pause and cut this object made, then wait for a whole cluster."""
        for name in sorted(self.paused):
            self.unpause(self.node(name))
        for name in sorted(self.cut):
            self.reconnect(self.node(name))
        for name in sorted(self.killed):
            self.start(self.node(name))
        self.wait_healthy(timeout)

    def remove(self) -> None:
        """Remove the containers (with their data) and the network."""
        for node in self.nodes:
            with contextlib.suppress(ClusterUnavailable):
                if node.name in self.paused:
                    _docker("unpause", node.container)
            _run(["docker", "rm", "-f", "-v", node.container], 60)
        _run(["docker", "network", "rm", self.network], 30)
        for f in self.conf_dir.glob("*"):
            f.unlink()
        with contextlib.suppress(OSError):
            self.conf_dir.rmdir()


def _node_command() -> list[str]:
    # The same cookie on every node is what lets them form a cluster. Written before the server
    # starts (and again on a restart: a 0400 file cannot be overwritten, so remove it first).
    script = ('umask 077; rm -f "$HOME/.erlang.cookie"; '
              'printf %s "$HUB_ERLANG_COOKIE" > "$HOME/.erlang.cookie"; '
              'exec /usr/lib/rabbitmq/bin/rabbitmq-server')
    return ["/bin/sh", "-c", script]


def start_cluster(size: int = 3, *, image: str = IMAGE, log: Log = print,
                  conf: str = CLUSTER_CONF, timeout: float = 180) -> Cluster:
    """Start ``size`` nodes of ``image`` on a fresh network and cluster them.

    Raises :class:`ClusterUnavailable` (a :class:`~hub.testing.devbroker.BrokerUnavailable`) with a
    one-line reason when Docker, the image or the cluster cannot be had; nothing is left behind.
    """
    if size < 1:
        raise ValueError("a cluster has at least one node")
    ensure_docker_and_image(image, log)
    tag = secrets.token_hex(4)
    network = f"edxml-hub-cluster-{tag}"
    conf_dir = Path(tempfile.mkdtemp(prefix=f"edxml-hub-cluster-{tag}-"))
    conf_dir.chmod(0o755)
    (conf_dir / "rabbitmq.conf").write_text(conf)
    # No management plugin: the CLI tools are all the tests need, and each node boots faster.
    (conf_dir / "enabled_plugins").write_text("[].\n")
    for f in conf_dir.iterdir():
        f.chmod(0o644)
    nodes = tuple(Node(f"rabbit{i}", f"{network}-rabbit{i}", free_port())
                  for i in range(1, size + 1))
    cluster = Cluster(network, nodes, image, conf_dir, log)
    cookie = secrets.token_hex(16)
    try:
        _docker("network", "create", "--label", "edxml-hub.testing.cluster=test", network)
        for node in nodes:
            _docker("run", "-d", "--name", node.container, "--hostname", node.name,
                    "--network", network, "--network-alias", node.name,
                    "--label", "edxml-hub.testing.cluster=test",
                    "-p", f"127.0.0.1:{node.port}:5672",
                    "-e", f"HUB_ERLANG_COOKIE={cookie}",
                    "-e", "RABBITMQ_CONFIG_FILE=/etc/hub-cluster/rabbitmq.conf",
                    "-e", "RABBITMQ_ENABLED_PLUGINS_FILE=/etc/hub-cluster/enabled_plugins",
                    "-v", f"{conf_dir}:/etc/hub-cluster:ro",
                    image, *_node_command())
        t0 = time.monotonic()
        for node in nodes:
            cluster.await_node(node, timeout)
        seed = nodes[0]
        for node in nodes[1:]:
            cluster.ctl(node, "stop_app")
            cluster.ctl(node, "join_cluster", seed.node_name)
            cluster.ctl(node, "start_app")
        cluster.wait_healthy(max(30.0, timeout - (time.monotonic() - t0)))
    except BaseException:
        cluster.remove()
        raise
    log(f"cluster of {size} on {network}: " + ", ".join(f"{n.name}=127.0.0.1:{n.port}"
                                                        for n in nodes))
    return cluster


@contextlib.contextmanager
def cluster(size: int = 3, **kwargs: object) -> Iterator[Cluster]:
    """``with cluster() as c:`` — start a cluster and remove it afterwards."""
    running = start_cluster(size, **kwargs)  # type: ignore[arg-type]
    try:
        yield running
    finally:
        running.remove()


def remove_stale(log: Log = print, names: Iterable[str] = ()) -> None:
    """Remove test clusters left behind by a killed run (containers and networks labelled
    ``edxml-hub.testing.cluster=test``), or only those whose names are given."""
    wanted = set(names)
    ids = _run(["docker", "ps", "-aq", "--filter", "label=edxml-hub.testing.cluster=test"]).stdout.split()
    for cid in ids:
        if not wanted or cid in wanted:
            _run(["docker", "rm", "-f", "-v", cid])
    nets = _run(["docker", "network", "ls", "-q", "--filter", "label=edxml-hub.testing.cluster=test"])
    for nid in nets.stdout.split():
        _run(["docker", "network", "rm", nid])
    if ids:
        log(f"removed {len(ids)} stale cluster container(s)")
