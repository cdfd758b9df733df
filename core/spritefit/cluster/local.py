"""A Ray cluster on this machine, for `spritefit bench batch` and the tests: a head and more nodes
on 127.0.0.1, each `ray start --block` in a session of its own, its files in a temporary folder,
every wait bounded in time, and stopped by the process ids it started (never `ray stop`, which
would stop every Ray on the machine). Linux only (processes are found through /proc)."""
from __future__ import annotations

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

START_TIMEOUT_S = 90.0
STOP_TIMEOUT_S = 40.0
STARTED = "Ray runtime started"


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
    environment (set before it imports Ray). Nothing is read from or written to ~/.ray."""

    def __init__(self, cpus: list[int], python: str = sys.executable, token: str | None = None):
        self.python, self.cpus = python, cpus
        self.environment = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": token or secrets.token_hex(32)}
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
        head = ["--head", f"--port={self.port}", f"--temp-dir={self.folder / 'tmp'}", "--include-dashboard=false",
                f"--dashboard-port={free_port()}"]
        self.nodes.append(self._start_node(head, self.cpus[0], "head"))
        for i, cpus in enumerate(self.cpus[1:], 1):
            self.add_node(cpus, f"node{i}")

    def add_node(self, cpus: int, name: str) -> RayNode:
        node = self._start_node([f"--address={self.address}"], cpus, name)
        self.nodes.append(node)
        return node

    def _start_node(self, role: list[str], cpus: int, name: str) -> RayNode:
        log = self.folder / f"{name}.log"
        command = [self.python, "-c", "import sys; from ray.scripts.scripts import main; sys.exit(main())",
                   "start", "--block", *role, "--node-ip-address=127.0.0.1", f"--num-cpus={cpus}", "--num-gpus=0",
                   "--object-store-memory=120000000", "--disable-usage-stats"]
        env = dict(os.environ, RAY_USAGE_STATS_ENABLED="0", PYTHONUNBUFFERED="1", **self.environment)
        for name in ("RAY_ADDRESS", "RAY_AUTH_TOKEN_PATH"):
            env.pop(name, None)
        with open(log, "wb") as out:
            process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                       env=env, cwd=self.folder, start_new_session=True)
        node = RayNode(process, log, cpus)
        node.wait_started()
        return node

    def stop(self) -> None:
        for node in reversed(self.nodes):      # worker nodes first, the head last
            node.stop()
        self.nodes.clear()
        shutil.rmtree(self.folder, ignore_errors=True)
