"""Ray clusters of separate test hosts, as users run them: every Ray node in a network namespace of
its own on a private test subnet (tests/testnet.py), each behind the firewall that the README gives
(only the head's GCS port and the fixed node-manager, object-manager and worker ports come in), and
the submitting `spritefit` in another namespace. A batch must work through those rules (so the
README's port list is complete), a host killed or cut off mid-batch must cost no image and no
hang, and a submitter without the cluster's token is refused before anything is written."""
from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
from pathlib import Path

import pytest

from spritefit.cluster.local import RayNode, ray_start_command, start_node
from spritefit.scene import Scene
from test_batch import FAST, small_images, spritefit
from test_cluster import same_scene
from testnet import Host, HostNetwork, require_namespaces

# The ports the README tells users to fix and open (the GCS port on the head only).
GCS_PORT = 6379
NODE_PORTS = {"--node-manager-port": 6380, "--object-manager-port": 6381}
WORKER_PORTS = range(10002, 10032)
# Fixed too, so that nothing picks a random port, but reached only from the node itself.
LOCAL_PORTS = {"--runtime-env-agent-port": 6382, "--dashboard-agent-grpc-port": 6383,
               "--dashboard-agent-listen-port": 6384, "--metrics-export-port": 6385}
# A cut-off host is declared dead after about 5 s instead of Ray's default 30 s or more.
HEALTH_CHECKS = {"RAY_health_check_initial_delay_ms": "1000", "RAY_health_check_period_ms": "1000",
                 "RAY_health_check_timeout_ms": "1000", "RAY_health_check_failure_threshold": "4"}
BATCH_TIMEOUT_S = 600
CUT_OFF_BOUND_S = 120     # a batch whose host was cut off finishes within this after the cut


class HostCluster:
    """A Ray cluster over test hosts: the head, worker hosts and a submitting host (a Ray node
    without CPUs, as a laptop that joins the cluster to submit work; Ray drivers need a node
    of their own)."""

    def __init__(self, network: HostNetwork, cpus: list[int], token: str):
        self.network = network
        self.environment = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": token, **HEALTH_CHECKS}
        self.nodes: dict[str, RayNode] = {}
        self.hosts: dict[str, Host] = {}
        self.head = self._host("head", cpus[0], head=True)
        for i, count in enumerate(cpus[1:], 1):
            self._host(f"node{i}", count)
        self.submitter = self._host("submit", 0)
        self.address = f"{self.head.address}:{GCS_PORT}"

    def _host(self, name: str, cpus: int, head: bool = False) -> Host:
        host = self.network.add_host(name)
        host.firewall([*([GCS_PORT] if head else []), *NODE_PORTS.values(), WORKER_PORTS])
        role = ["--head", f"--port={GCS_PORT}", "--include-dashboard=false"] if head else \
            [f"--address={self.hosts['head'].address}:{GCS_PORT}"]
        ports = [f"{flag}={port}" for flag, port in {**NODE_PORTS, **LOCAL_PORTS}.items()]
        command = [*ray_start_command(sys.executable), *role, f"--node-ip-address={host.address}", *ports,
                   f"--min-worker-port={WORKER_PORTS.start}", f"--max-worker-port={WORKER_PORTS.stop - 1}",
                   f"--num-cpus={cpus}", "--num-gpus=0", "--object-store-memory=120000000",
                   f"--temp-dir={self.network.folder / name}", "--disable-usage-stats"]
        self.nodes[name] = start_node(host.command(command), self.network.folder / f"{name}.log", cpus,
                                      self.environment, self.network.folder)
        self.hosts[name] = host
        return host

    def submit(self, *args, env: dict | None = None) -> subprocess.Popen:
        """`spritefit ARGS` on the submitting host, with the cluster's token unless `env` says otherwise."""
        environment = dict(os.environ, **(self.environment if env is None else env))
        return subprocess.Popen(self.submitter.command([sys.executable, "-m", "spritefit.cli", *args]),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=environment)

    def stop(self) -> None:
        for name in reversed(list(self.nodes)):       # every process by its id; the namespaces go next
            self.nodes[name].stop()


@pytest.fixture
def hosts():
    """start(cpus) -> HostCluster on fresh test hosts, removed after the test."""
    require_namespaces()
    with HostNetwork() as network:
        clusters = []

        def start(cpus: list[int]) -> HostCluster:
            clusters.append(HostCluster(network, cpus, secrets.token_hex(32)))
            return clusters[-1]
        try:
            yield start
        finally:
            for cluster in clusters:
                cluster.stop()


def finish(process: subprocess.Popen) -> tuple[int, str, str]:
    try:
        stdout, stderr = process.communicate(timeout=BATCH_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        process.kill()
        stdout, stderr = process.communicate()
        pytest.fail(f"the batch hung for {BATCH_TIMEOUT_S} s:\n{stdout}\n{stderr}")
    return process.returncode, stdout, stderr


def reachable(host: Host, address: str, port: int) -> bool:
    probe = host.run([sys.executable, "-c", f"import socket; socket.create_connection(({address!r}, {port}), "
                      f"timeout=2)"], capture_output=True, timeout=30)
    return probe.returncode == 0


def exactly_one_result_each(out: Path, count: int, files: list[str], n: int) -> None:
    rows = json.loads((out / "summary.json").read_text())
    assert [r["status"] for r in rows] == ["done"] * count, rows
    for i in range(count):
        record = json.loads((out / f"img{i}" / "result.json").read_text())
        assert sorted(record["files"]) == files
        assert sorted(p.name for p in (out / f"img{i}").iterdir()) == ["result.json", *files]
        assert len(Scene.load(out / f"img{i}" / "scene.json")) == n
    assert not [p for p in out.rglob("*") if p.name.startswith(".") or p.suffix == ".tmp"]


def test_a_batch_across_firewalled_hosts_equals_the_local_run(hosts, tmp_path):
    cluster = hosts([1, 1])
    # The firewall is on: a port off the README's list is closed to other hosts, open on the host itself.
    agent = LOCAL_PORTS["--runtime-env-agent-port"]
    assert not reachable(cluster.submitter, cluster.head.address, agent)
    assert reachable(cluster.head, cluster.head.address, agent)
    assert reachable(cluster.submitter, cluster.head.address, GCS_PORT)

    small_images(tmp_path / "in", 6)
    local = spritefit("batch", tmp_path / "in", *FAST, "--out", tmp_path / "local")
    code, stdout, stderr = finish(cluster.submit("batch", tmp_path / "in", *FAST, "--out", tmp_path / "ray",
                                                 "--ray", cluster.address))
    assert local.returncode == code == 0, stdout + stderr
    assert f"fitted on the Ray cluster at {cluster.address}" in stdout
    nodes = set()
    for i in range(6):
        same_scene(tmp_path / "local" / f"img{i}" / "scene.json", tmp_path / "ray" / f"img{i}" / "scene.json")
        nodes.add(json.loads((tmp_path / "ray" / f"img{i}" / "result.json").read_text())["fitted_on"]["ray_node"])
    assert len(nodes) == 2                                  # the head and the other host both fitted images


def slow_batch_fitting_on_node1(cluster: HostCluster, tmp_path: Path, formats: str) -> tuple[subprocess.Popen, Path]:
    """A 6-image batch long enough to lose a host under it, once node1 is fitting one of them."""
    small_images(tmp_path / "in", 6, size=96)
    slow = ["--sprites", "shapes", "-n", "150", "--iters", "120", "--size", "96", "--formats", formats]
    out = tmp_path / "out"
    batch = cluster.submit("batch", tmp_path / "in", *slow, "--out", out, "--ray", cluster.address)
    wait_until_fitting(cluster.nodes["node1"], batch)
    return batch, out


def test_a_host_killed_mid_batch_loses_nothing(hosts, tmp_path):
    cluster = hosts([1, 1])
    batch, out = slow_batch_fitting_on_node1(cluster, tmp_path, "png,psd,json")
    cluster.nodes["node1"].kill()                          # with an image half-fitted on it
    code, stdout, stderr = finish(batch)
    assert code == 0, stdout + stderr
    exactly_one_result_each(out, 6, ["result.png", "result.psd", "scene.json"], 150)


def test_a_host_cut_off_mid_batch_loses_nothing_and_does_not_hang(hosts, tmp_path):
    cluster = hosts([1, 1])
    batch, out = slow_batch_fitting_on_node1(cluster, tmp_path, "png,json")
    cluster.hosts["node1"].cut()                           # its processes live on, unreachable
    start = time.monotonic()
    code, stdout, stderr = finish(batch)
    assert code == 0, stdout + stderr
    # Measured 17-19 s (the host declared dead, the driver's ping unanswered, the image fitted
    # again elsewhere); Ray's own keepalive made it 127 s to 7 min.
    assert time.monotonic() - start < CUT_OFF_BOUND_S
    exactly_one_result_each(out, 6, ["result.png", "scene.json"], 150)


def test_a_submitter_without_the_token_is_refused_and_nothing_is_written(hosts, tmp_path):
    cluster = hosts([1])
    small_images(tmp_path / "in", 1)
    code, stdout, stderr = finish(cluster.submit("batch", tmp_path / "in", *FAST, "--out", tmp_path / "out",
                                                 "--ray", cluster.address, env={"RAY_AUTH_MODE": "token",
                                                                                "RAY_AUTH_TOKEN": "0" * 64}))
    assert code == 2, stdout + stderr
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert lines[-1].startswith("spritefit: error: ") and "token" in lines[-1], stderr
    assert "RAY_AUTH_TOKEN" in lines[-1]
    assert len([line for line in lines if line.startswith("spritefit: error")]) == 1
    assert not (tmp_path / "out").exists()


def wait_until_fitting(node: RayNode, batch: subprocess.Popen) -> None:
    deadline = time.monotonic() + 300
    while not node.running("fit_batch_image") and time.monotonic() < deadline and batch.poll() is None:
        time.sleep(0.1)
    assert batch.poll() is None and node.running("fit_batch_image"), "the host never took an image"


def test_the_ports_in_the_readme_are_the_ones_tested():
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    for flag, port in {"--port": GCS_PORT, **NODE_PORTS, **LOCAL_PORTS}.items():
        assert f"{flag}={port}" in readme, flag
    assert f"--min-worker-port={WORKER_PORTS.start}" in readme
    assert f"--max-worker-port={WORKER_PORTS.stop - 1}" in readme
    assert f"{WORKER_PORTS.start}-{WORKER_PORTS.stop - 1}" in readme      # the firewall rule
