"""A Ray cluster on this machine, for `spritefit bench batch` and the tests: a head and more nodes
on 127.0.0.1, each in a session of its own, its files in a temporary folder, every wait bounded in
time, and stopped by the process ids it started (never `ray stop`, which would stop every Ray on
the machine). Linux only (processes and their sockets are found through /proc).

Loopback only, whatever interfaces the machine has: Ray turns 127.0.0.1 into the machine's network
address and then listens on every interface, unless RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 (Ray's
local-only mode) is in its environment. The head is `ray start --head` in that mode; the other
nodes are loopback_node.py (`ray start` refuses to add a node in that mode). Once started, the
cluster checks the sockets its processes listen on and refuses to run with one beyond loopback.
"""
from __future__ import annotations

import ipaddress
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .loopback_node import LOOPBACK_ONLY, STARTED

START_TIMEOUT_S = 90.0
STOP_TIMEOUT_S = 40.0
LOOPBACK_NODE = Path(__file__).with_name("loopback_node.py")   # run by path: needs no SpriteFit on the node


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def descendants(pid: int) -> list[int]:
    """pid's child processes, their children, ... (Linux: read from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                ppid = int(Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    found, stack = [], [pid]
    while stack:
        for child in children.get(stack.pop(), []):
            found.append(child)
            stack.append(child)
    return found


def listening_sockets(pids: list[int]) -> list[tuple[int, str, int]]:
    """(pid, address, port) of every TCP socket listening and every UDP socket bound by these
    processes, read from /proc in each process's own network namespace."""
    found = []
    for pid in pids:
        inodes = _socket_inodes(pid)
        if not inodes:
            continue
        for table, listening in (("tcp", "0A"), ("tcp6", "0A"), ("udp", "07"), ("udp6", "07")):
            try:
                rows = Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]
            except OSError:
                continue
            for row in rows:
                local, remote, state, inode = (row.split()[i] for i in (1, 2, 3, 9))
                if inode in inodes and state == listening and (table.startswith("tcp") or set(remote) <= set("0:")):
                    address, port = local.rsplit(":", 1)
                    found.append((pid, str(_address(address)), int(port, 16)))
    return found


def _socket_inodes(pid: int) -> set[str]:
    inodes = set()
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return inodes
    for fd in fds:
        try:
            link = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if link.startswith("socket:["):
            inodes.add(link[8:-1])
    return inodes


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    """/proc/net's hex address: 32-bit words in the host's (little-endian) byte order."""
    raw = b"".join(bytes.fromhex(text[i:i + 8])[::-1] for i in range(0, len(text), 8))
    return ipaddress.ip_address(raw)


def is_loopback(address: str) -> bool:
    """127.0.0.0/8, ::1, or 127.x written as an IPv6-mapped address."""
    ip = ipaddress.ip_address(address)
    mapped = getattr(ip, "ipv4_mapped", None)
    return (mapped or ip).is_loopback


class RayNode:
    def __init__(self, process: subprocess.Popen, log: Path, cpus: int):
        self.process, self.log, self.cpus = process, log, cpus

    @property
    def pids(self) -> list[int]:
        return [self.process.pid, *descendants(self.process.pid)]

    def running(self, task: str) -> bool:
        """Whether one of the node's workers is running the task of this function name (Ray
        titles a busy worker process "ray::<name>")."""
        for pid in self.pids:
            try:
                if f"ray::{task}".encode() in Path(f"/proc/{pid}/cmdline").read_bytes():
                    return True
            except OSError:
                continue
        return False

    def wait_started(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            text = self.log.read_text(errors="replace") if self.log.exists() else ""
            if STARTED in text:
                return
            if self.process.poll() is not None:
                raise RuntimeError(f"ray start exited with {self.process.returncode}:\n{text[-3000:]}")
            time.sleep(0.25)
        raise TimeoutError(f"ray start did not finish in {START_TIMEOUT_S:.0f} s:\n{self.log.read_text()[-3000:]}")

    def kill(self) -> None:
        """As if the machine went away: every process of the node killed at once."""
        for pid in self.pids:
            _signal(pid, signal.SIGKILL)
        self.process.wait(timeout=STOP_TIMEOUT_S)

    def stop(self) -> None:
        """Graceful: `ray start --block` stops its processes on SIGTERM; whatever is left is killed."""
        started = self.pids
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                pass
        for pid in started + descendants(self.process.pid):
            _signal(pid, signal.SIGKILL)
        if self.process.poll() is None:
            self.process.wait(timeout=STOP_TIMEOUT_S)


def _signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


class LocalCluster:
    """`with LocalCluster(cpus=[1, 1]) as cluster:` a head with 1 CPU and one more node with 1 CPU;
    cluster.address is what `--ray` takes. python: the interpreter the nodes run tasks with.

    The cluster requires Ray's token authentication with a token of its own (`token`, or a new
    random one); a process that submits work to it needs `cluster.environment` in its
    environment (set before it imports Ray): the token, and Ray's loopback-only mode.
    Nothing is read from or written to ~/.ray."""

    def __init__(self, cpus: list[int], python: str = sys.executable, token: str | None = None):
        self.python, self.cpus = python, cpus
        self.environment = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": token or secrets.token_hex(32),
                            **LOOPBACK_ONLY}
        # Short: Ray keeps unix sockets in it (at most 107 characters a path).
        self.folder = Path(tempfile.mkdtemp(prefix="sf-ray-", dir="/tmp"))
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.nodes: list[RayNode] = []

    def __enter__(self) -> "LocalCluster":
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self) -> None:
        head = [*ray_start_command(self.python), "--head", f"--port={self.port}", "--node-ip-address=127.0.0.1",
                f"--temp-dir={self.folder / 'tmp'}", "--include-dashboard=false", f"--dashboard-port={free_port()}",
                f"--num-cpus={self.cpus[0]}", "--num-gpus=0", "--object-store-memory=120000000",
                "--disable-usage-stats"]
        self.nodes.append(start_node(head, self.folder / "head.log", self.cpus[0], self.environment, self.folder))
        for i, cpus in enumerate(self.cpus[1:], 1):
            self.add_node(cpus, f"node{i}")
        self.check_loopback()

    def add_node(self, cpus: int, name: str) -> RayNode:
        command = [self.python, str(LOOPBACK_NODE), f"--address={self.address}", f"--num-cpus={cpus}",
                   f"--temp-dir={self.folder / 'tmp'}"]
        node = start_node(command, self.folder / f"{name}.log", cpus, self.environment, self.folder)
        self.nodes.append(node)
        return node

    def listening(self) -> list[tuple[int, str, int]]:
        """(pid, address, port) of every socket the cluster's processes listen on."""
        return listening_sockets([pid for node in self.nodes for pid in node.pids])

    def check_loopback(self) -> None:
        beyond = [(pid, address, port) for pid, address, port in self.listening() if not is_loopback(address)]
        if beyond:
            pid, address, port = beyond[0]
            raise RuntimeError(f"Ray process {pid} listens on {address}:{port}, beyond the loopback interface")

    def stop(self) -> None:
        for node in reversed(self.nodes):      # worker nodes first, the head last
            node.stop()
        self.nodes.clear()
        shutil.rmtree(self.folder, ignore_errors=True)


def ray_start_command(python: str) -> list[str]:
    """`ray start --block` run by this interpreter (the `ray` script may not be on PATH)."""
    return [python, "-c", "import sys; from ray.scripts.scripts import main; sys.exit(main())", "start", "--block"]


def start_node(command: list[str], log: Path, cpus: int, environment: dict, cwd: Path) -> RayNode:
    """Start one node's process (in a session of its own, its output in `log`) and wait until it
    says it started."""
    env = dict(os.environ, RAY_USAGE_STATS_ENABLED="0", PYTHONUNBUFFERED="1", **environment)
    for name in ("RAY_ADDRESS", "RAY_AUTH_TOKEN_PATH"):
        env.pop(name, None)
    with open(log, "wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                   env=env, cwd=cwd, start_new_session=True)
    node = RayNode(process, log, cpus)
    try:
        node.wait_started()
    except BaseException:
        node.stop()
        raise
    return node
