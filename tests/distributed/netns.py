"""Cluster nodes on one machine: one network namespace per node, joined by a bridge the test creates.

`Fabric` makes a bridge with a /24 of its own (10.x.y.1 on the host side) and one namespace per node
(10.x.y.2, .3, ...), each with its own loopback and a veth on the bridge. Every process started for a
node also gets a private, empty `/tmp` (its own mount namespace), so nothing a node writes to its temp
directory is visible to another node or to the driver, as on separate machines; files that every node
must see go to a shared directory outside `/tmp` (the stand-in for a cluster's shared filesystem). A
checkout, virtual environment or asset cache that itself lives under `/tmp` stays visible in the nodes
(bound back over their private `/tmp`), so the tests also pass from a clone in `/tmp`.

Where the kernel refuses namespaces (no root, no CAP_NET_ADMIN), `Fabric` falls back to loopback
addresses 127.0.0.1, .2, ... with no isolation at all; `Fabric.notes` says so and the tests report it.

`RayNodes` starts `ray start --head` in node 0 and `ray start --address=...` in the others, runs a
driver inside node 0's namespaces, and kills a node with SIGKILL (its raylet, workers and agents at once).
Everything is torn down by `close()`, which the fixtures call whatever happens.
"""

from __future__ import annotations

import ipaddress
import os
import random
import shlex
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Sequence
from pathlib import Path

RAY = os.path.join(os.path.dirname(sys.executable), "ray")
STARTED = "Ray runtime started."  # what `ray start` prints once the node has joined
NOT_TASKS = {"ray::IDLE", "ray::DashboardAgent", "ray::RuntimeEnvAgent"}  # idle workers and a node's agents


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check)


def _used_networks() -> list[ipaddress.IPv4Network]:
    out = _ip("-4", "-o", "addr", "show", check=False).stdout.split()
    return [ipaddress.ip_interface(word).network for word in out if "/" in word and word[0].isdigit()]


def descendants(root: int) -> list[int]:
    """`root` and every process below it (from /proc, no dependency on psutil)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                ppid = int(fh.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [root] if os.path.exists(f"/proc/{root}") else []
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, []))
    return out


def cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            return fh.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


def kill_all(pids: Sequence[int]) -> None:
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


def _kept_under_tmp() -> list[str]:
    """Paths under /tmp (relative to it) that a node's process needs although its /tmp is private: the
    checkout, the interpreter's environment and the asset cache, when they live there."""
    repo = Path(__file__).resolve().parents[2]
    wanted = [repo, Path(sys.prefix), Path(sys.prefix).resolve(), Path(sys.executable).resolve().parent,
              Path(os.environ.get("DOLMA_CACHE") or Path.home() / ".cache" / "dolma_pipeline").resolve()]
    kept = set()
    for path in wanted:
        parts = path.parts
        if len(parts) > 2 and parts[:2] == ("/", "tmp"):
            kept.add(parts[2])  # the top directory under /tmp: it holds the rest
    return sorted(kept)


class Fabric:
    """`count` nodes with addresses of their own; see the module docstring."""

    def __init__(self, count: int, force_loopback: bool = False):
        self.tag = uuid.uuid4().hex[:6]
        self.count = count
        self.namespaces: list[str] = []
        self.bridge = f"dmb{self.tag}"
        self._veths: list[str] = []
        self.isolated = False
        self.notes = ""
        if force_loopback or os.environ.get("DOLMA_TEST_NETNS") == "0":
            self._loopback("namespaces not used (DOLMA_TEST_NETNS=0)")
            return
        try:
            self._create()
            self.isolated = True
        except (subprocess.CalledProcessError, FileNotFoundError, OSError) as e:
            reason = getattr(e, "stderr", "") or str(e)
            self.close()
            self._loopback(f"network namespaces refused ({reason.strip()[:200]})")

    def _loopback(self, why: str) -> None:
        self.namespaces = []
        self.host = "127.0.0.1"
        # node 0 on this machine's own loopback address: a driver started here must find a raylet at its IP
        self.addresses = [f"127.0.0.{i + 1}" for i in range(self.count)]
        self.notes = f"{why}: fell back to loopback addresses {', '.join(self.addresses)}, no isolation"

    def _create(self) -> None:
        used = _used_networks()
        for _ in range(200):
            net = ipaddress.ip_network(f"10.{random.randint(64, 254)}.{random.randint(0, 255)}.0/24")
            if not any(net.overlaps(u) for u in used):
                break
        else:
            raise OSError("no free 10.x.y.0/24 for the test bridge")
        hosts = list(net.hosts())
        self.host = str(hosts[0])
        self.addresses = [str(hosts[i + 1]) for i in range(self.count)]
        _ip("link", "add", self.bridge, "type", "bridge")
        _ip("addr", "add", f"{self.host}/24", "dev", self.bridge)
        _ip("link", "set", self.bridge, "up")
        for i, address in enumerate(self.addresses):
            ns, veth = f"dolma-{self.tag}-{i}", f"dmv{self.tag}{i}"
            _ip("netns", "add", ns)
            self.namespaces.append(ns)
            _ip("link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns)
            self._veths.append(veth)
            _ip("link", "set", veth, "master", self.bridge, "up")
            _ip("-n", ns, "addr", "add", f"{address}/24", "dev", "eth0")
            _ip("-n", ns, "link", "set", "eth0", "up")
            _ip("-n", ns, "link", "set", "lo", "up")
            # a default route, so that "which of my addresses reaches the world" (Ray's guess of its IP) works
            _ip("-n", ns, "route", "add", "default", "via", self.host)

    def wrap(self, node: int, argv: Sequence[str]) -> list[str]:
        """`argv` run inside node `node`: its network namespace and a private, empty /tmp."""
        if not self.isolated:
            return list(argv)
        keep = " ".join(shlex.quote(p) for p in _kept_under_tmp())
        # What must stay visible although /tmp is private (a checkout, a virtual environment or the asset
        # cache living under /tmp) is bound to a staging tmpfs on /mnt first, then back over the new /tmp
        # (this process's mount namespace only: the host's /mnt and /tmp are untouched).
        script = 'mount -t tmpfs -o size=4g tmpfs /tmp && exec "$@"'
        if keep:
            script = ('w=$(pwd) && mount -t tmpfs tmpfs /mnt && '
                      f'for p in {keep}; do mkdir -p "/mnt/$p" && mount --bind "/tmp/$p" "/mnt/$p" || exit 1; done && '
                      'mount -t tmpfs -o size=4g tmpfs /tmp && '
                      f'for p in {keep}; do mkdir -p "/tmp/$p" && mount --bind "/mnt/$p" "/tmp/$p" || exit 1; done && '
                      'cd "$w" && exec "$@"')
        return ["ip", "netns", "exec", self.namespaces[node], "unshare", "--mount", "--propagation", "private",
                "sh", "-c", script, "sh", *argv]

    def enter(self, pid: int, argv: Sequence[str]) -> list[str]:
        """`argv` run in the network and mount namespaces of process `pid` (e.g. beside a node's raylet)."""
        if not self.isolated:
            return list(argv)
        return ["nsenter", "-t", str(pid), "-m", "-n", "--", *argv]

    def pids(self, node: int) -> list[int]:
        """Every process in node `node`'s network namespace (isolated mode only)."""
        if not self.isolated:
            return []
        out = _ip("netns", "pids", self.namespaces[node], check=False).stdout.split()
        return [int(p) for p in out if p.isdigit()]

    def close(self) -> None:
        """Kill whatever still runs in the namespaces, then delete them and the bridge (idempotent)."""
        for i in range(len(self.namespaces)):
            kill_all(self.pids(i))
        deadline = time.time() + 10
        while any(self.pids(i) for i in range(len(self.namespaces))) and time.time() < deadline:
            time.sleep(0.1)
        for ns in self.namespaces:
            _ip("netns", "del", ns, check=False)
        for veth in self._veths:
            _ip("link", "del", veth, check=False)
        _ip("link", "del", self.bridge, check=False)
        self.namespaces, self._veths = [], []


class RayNodes:
    """A Ray cluster of `len(num_cpus)` nodes on a `Fabric`: node 0 is the head (and runs the driver)."""

    PORT = 6379

    def __init__(self, fabric: Fabric, num_cpus: Sequence[int], env: dict[str, str], log_dir: Path):
        self.fabric, self.num_cpus, self.env, self.log_dir = fabric, list(num_cpus), env, log_dir
        self.procs: list[subprocess.Popen] = []
        self.port = self.PORT if fabric.isolated else free_port()
        self.address = f"{fabric.addresses[0]}:{self.port}"
        self.dead: set[int] = set()
        self._restarts: dict[int, int] = {}  # start-up messages already in a node's log before a restart

    def _node_argv(self, node: int) -> list[str]:
        ip = self.fabric.addresses[node]
        argv = [RAY, "start", "--block", f"--node-ip-address={ip}", f"--num-cpus={self.num_cpus[node]}",
                "--disable-usage-stats", "--resources", f'{{"node{node}": 1}}']
        if node == 0:
            argv += ["--head", f"--port={self.port}", "--include-dashboard=false"]
        else:
            argv += [f"--address={self.address}"]
        if not self.fabric.isolated:  # nodes share this machine's ports and /tmp
            argv += [f"--dashboard-agent-listen-port={free_port()}", f"--metrics-export-port={free_port()}"]
        return argv

    def _start_node(self, node: int) -> subprocess.Popen:
        with open(self.log_dir / f"node{node}.log", "ab") as log:
            return subprocess.Popen(self.fabric.wrap(node, self._node_argv(node)), env=self.env, stdout=log,
                                    stderr=subprocess.STDOUT, start_new_session=True)

    def start(self, timeout: float = 240, attempts: int = 3) -> None:
        """Head first, then the workers; a node whose start-up times out (a loaded machine) is started again.

        Start-up is followed in the nodes' logs (`ray start` prints "Ray runtime started."), which costs
        nothing, rather than by probing with a driver (a Python process and a Ray connection each time).
        """
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.procs = [self._start_node(0)]
        self._wait_started([0], timeout, attempts)
        self.procs += [self._start_node(node) for node in range(1, len(self.num_cpus))]
        self._wait_started(list(range(1, len(self.num_cpus))), timeout, attempts)
        self.wait_for_nodes(len(self.num_cpus), timeout)

    def _wait_started(self, nodes: list[int], timeout: float, attempts: int) -> None:
        deadline = time.time() + timeout
        restarts = 0
        while not all(self.node_log(node).count(STARTED) > self._restarts.get(node, 0) for node in nodes):
            for node in nodes:
                if self.procs[node].poll() is not None:
                    if node == 0 or restarts >= attempts:
                        raise RuntimeError(f"ray node {node} exited: {self.node_log(node)[-3000:]}")
                    kill_all(self.node_pids(node))
                    self._restarts[node] = self.node_log(node).count(STARTED)
                    self.procs[node] = self._start_node(node)
                    restarts += 1
            if time.time() > deadline:
                raise RuntimeError(f"Ray nodes {nodes} did not start: {self.node_log(nodes[0])[-3000:]}")
            time.sleep(0.5)

    def driver(self, argv: Sequence[str]) -> list[str]:
        """`argv` as a driver on the head node (its namespaces), joining the cluster through RAY_ADDRESS."""
        return self.fabric.enter(self.procs[0].pid, ["env", f"RAY_ADDRESS={self.address}", *argv])

    def alive_nodes(self) -> list[dict]:
        probe = ("import json, ray; ray.init(logging_level='ERROR'); "
                 "print(json.dumps([{'ip': n['NodeManagerAddress'], 'id': n['NodeID'], 'cpus': n['Resources'].get('CPU', 0)} "
                 "for n in ray.nodes() if n['Alive']]))")
        out = subprocess.run(self.driver([sys.executable, "-c", probe]), env=self.env, capture_output=True,
                             text=True, timeout=120)
        import json

        lines = out.stdout.strip().splitlines()
        return json.loads(lines[-1]) if out.returncode == 0 and lines else []

    def wait_for_nodes(self, count: int, timeout: float) -> None:
        deadline = time.time() + timeout
        while time.time() < deadline:
            for node, proc in enumerate(self.procs):
                if proc.poll() is not None and node not in self.dead:
                    raise RuntimeError(f"ray node {node} exited: {self.node_log(node)[-3000:]}")
            if len(self.alive_nodes()) >= count:
                return
            time.sleep(1)
        raise RuntimeError(f"Ray cluster at {self.address} did not reach {count} nodes: {self.node_log(0)[-3000:]}")

    def node_log(self, node: int) -> str:
        try:
            return (self.log_dir / f"node{node}.log").read_text(errors="replace")
        except OSError:
            return ""

    def node_pids(self, node: int) -> list[int]:
        """The node's processes: its namespace's (isolated) or the descendants of its `ray start`."""
        if self.fabric.isolated:
            return self.fabric.pids(node)
        return descendants(self.procs[node].pid)

    def tasks(self, node: int) -> list[str]:
        """The tasks `node`'s workers are executing now, from their process titles (`ray::<task name>`)."""
        titles = (cmdline(pid) for pid in self.node_pids(node))
        return [t for t in titles if t.startswith("ray::") and t.split()[0] not in NOT_TASKS]

    def kill(self, node: int) -> list[int]:
        """SIGKILL every process of the node at once (raylet, workers, agents), as a machine that dies."""
        pids = self.node_pids(node)
        kill_all(pids)
        self.dead.add(node)
        try:  # reap our child (`ray start`): a zombie would still count as one of the node's processes
            self.procs[node].wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        return pids

    def close(self) -> None:
        for node in range(len(self.procs)):
            kill_all(self.node_pids(node))
        for proc in self.procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass


class TaskSampler(threading.Thread):
    """Counts, every `interval` seconds, the nodes caught executing a Ray task (see `RayNodes.tasks`)."""

    def __init__(self, nodes: RayNodes, interval: float = 0.02):
        super().__init__(daemon=True)
        self.nodes, self.interval = nodes, interval
        self.seen: dict[int, int] = {}
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.is_set():
            for node in range(len(self.nodes.procs)):
                if node not in self.nodes.dead and self.nodes.tasks(node):
                    self.seen[node] = self.seen.get(node, 0) + 1
            time.sleep(self.interval)

    def __enter__(self) -> TaskSampler:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop_event.set()
        self.join()


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
