"""Separate test hosts on this machine: one network namespace per host, joined by veth pairs to a
bridge in a namespace of its own, on a private test subnet that exists only inside these
namespaces. Each host can have a firewall (nftables) and its link taken down. Everything is
removed afterwards; processes started on a host are ended by their process ids.

Needs root and `ip` and `nft` (Debian: iproute2, nftables); without them the tests that use it
are skipped with that reason, and fail under SPRITEFIT_REQUIRE_HOSTS=1 (CI, which runs as root)."""
from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import time
from pathlib import Path

import pytest

SUBNET = "10.213.77"        # /24, only inside the namespaces made here


def require_namespaces() -> None:
    """Skip (or, in CI, fail) where separate test hosts cannot be made."""
    why = None
    if os.geteuid() != 0:
        why = "network namespaces for test hosts need root"
    else:
        missing = [p for p in ("ip", "nft") if shutil.which(p) is None]
        if missing:
            why = f"{' and '.join(missing)} not installed (Debian: iproute2, nftables)"
    if why is None:
        return
    if os.environ.get("SPRITEFIT_REQUIRE_HOSTS") == "1":
        pytest.fail(f"{why}, and SPRITEFIT_REQUIRE_HOSTS=1")
    pytest.skip(why)


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True, timeout=30)


class Host:
    """A network namespace with loopback and one interface `eth0` at `address`, and a PID
    namespace of its own (with its own /proc), so that a process on one host sees only that
    host's processes, as on separate machines (a Ray driver looks for its node's raylet among
    the processes it can see). Its processes are ended together by ending the PID namespace."""

    def __init__(self, network: "HostNetwork", name: str, address: str):
        self.network, self.name, self.address = network, name, address
        self.namespace = f"{network.prefix}-{name}"
        self.port_on_bridge = f"{network.prefix[-6:]}{name[:5]}"     # at most 15 characters
        ip("netns", "add", self.namespace)
        ip("-n", self.namespace, "link", "set", "lo", "up")
        ip("link", "add", "eth0", "netns", self.namespace, "type", "veth", "peer", "name", self.port_on_bridge,
           "netns", network.switch)
        ip("-n", self.namespace, "addr", "add", f"{address}/24", "dev", "eth0")
        ip("-n", self.namespace, "link", "set", "eth0", "up")
        ip("-n", network.switch, "link", "set", self.port_on_bridge, "master", "br0", "up")
        self.init = subprocess.Popen(["ip", "netns", "exec", self.namespace, "unshare", "--pid", "--fork",
                                      "--mount-proc", "--kill-child", "sleep", "infinity"])
        self.init_pid = self._namespace_init()

    def _namespace_init(self) -> int:
        """The PID namespace's first process (the child of `unshare --fork`)."""
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                children = Path(f"/proc/{self.init.pid}/task/{self.init.pid}/children").read_text().split()
            except OSError:
                children = []
            if children:
                return int(children[0])
            time.sleep(0.02)
        raise RuntimeError(f"the PID namespace of test host {self.name} did not start")

    def command(self, argv: list) -> list[str]:
        """argv run on this host: in its network, PID and mount namespaces."""
        return ["nsenter", "-t", str(self.init_pid), "-n", "-p", "-m", "--", *map(str, argv)]

    def end(self) -> None:
        """End every process of the host at once (ending its PID namespace's first process does)."""
        try:
            os.kill(self.init_pid, 9)
        except ProcessLookupError:
            pass
        self.init.wait(timeout=30)

    def run(self, argv: list, **options) -> subprocess.CompletedProcess:
        return subprocess.run(self.command(argv), **options)

    def firewall(self, tcp_ports: list[int | range]) -> None:
        """Drop every packet that comes in from the network except new connections to these TCP
        ports (and replies to this host's own connections)."""
        ports = ", ".join(f"{p.start}-{p.stop - 1}" if isinstance(p, range) else str(p) for p in tcp_ports)
        rules = f"""
table inet spritefit_test {{
  chain input {{
    type filter hook input priority 0; policy drop;
    iifname "lo" accept
    ct state established,related accept
    tcp dport {{ {ports} }} accept
  }}
}}
"""
        subprocess.run(["ip", "netns", "exec", self.namespace, "nft", "-f", "-"], input=rules, text=True,
                       check=True, capture_output=True, timeout=30)

    def cut(self) -> None:
        """Take the host's link down (at the bridge), as if its cable were pulled."""
        ip("-n", self.network.switch, "link", "set", self.port_on_bridge, "down")


class HostNetwork:
    """`with HostNetwork() as net: head = net.add_host("head")`: hosts SUBNET.2, .3, ..."""

    def __init__(self):
        self.prefix = f"sft{secrets.token_hex(3)}"
        self.switch = f"{self.prefix}-sw"
        self.hosts: list[Host] = []
        self.folder = Path(f"/tmp/{self.prefix}")    # short: Ray keeps unix sockets under its temp folders

    def __enter__(self) -> "HostNetwork":
        self.folder.mkdir()
        try:
            ip("netns", "add", self.switch)
            ip("-n", self.switch, "link", "add", "br0", "type", "bridge")
            ip("-n", self.switch, "link", "set", "br0", "up")
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def add_host(self, name: str) -> Host:
        host = Host(self, name, f"{SUBNET}.{len(self.hosts) + 2}")
        self.hosts.append(host)
        return host

    def close(self) -> None:
        for host in self.hosts:
            host.end()
        for namespace in [host.namespace for host in self.hosts] + [self.switch]:
            leftover = _pids_in_namespace(namespace)
            for pid in leftover:            # only processes inside the namespaces made here
                try:
                    os.kill(pid, 9)
                except ProcessLookupError:
                    pass
            subprocess.run(["ip", "netns", "del", namespace], capture_output=True, timeout=30)
        self.hosts.clear()
        shutil.rmtree(self.folder, ignore_errors=True)


def _pids_in_namespace(namespace: str) -> list[int]:
    """Processes whose network namespace is this named one (`ip netns pids`)."""
    found = subprocess.run(["ip", "netns", "pids", namespace], capture_output=True, text=True, timeout=30)
    return [int(p) for p in found.stdout.split()]
