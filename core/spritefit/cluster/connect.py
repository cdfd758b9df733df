"""Connecting to a Ray cluster and checking that every node can run SpriteFit's tasks.

Addresses: `auto` starts a Ray instance on this machine for this process; `HOST:PORT` joins an
existing cluster at its head node's GCS port (`ray start --head --port=PORT`). Everything that can
go wrong before the first task (Ray not installed, nothing listening there, a node without
SpriteFit or with another version of it) is a SpriteFitError that says what to do.
"""
from __future__ import annotations

import logging
import os
import socket

from ..errors import SpriteFitError

PROBE_TIMEOUT_S = 120.0     # a node's first task starts a Python worker and imports torch
REACH_TIMEOUT_S = 5.0
_connected: str | None = None   # the address this process joined (Ray allows one per process)
# Ray's gRPC clients ping a quiet connection every 5 minutes and wait 2 minutes for the answer, so
# a driver whose task runs on a host that dropped off the network (its link down, its processes
# alive) waits that long before Ray retries the task elsewhere: 127 s to 7 min, measured on test
# hosts. This process pings every 2 s and gives up after 3 s more; the batch then finished 17 s
# after the cut. Set by the driver only, before Ray starts its core worker; the user's own wins.
DRIVER_KEEPALIVE = {"RAY_grpc_client_keepalive_time_ms": "2000", "RAY_grpc_client_keepalive_timeout_ms": "3000"}


class ClusterError(SpriteFitError):
    """The cluster cannot be used: unreachable, or its nodes cannot run SpriteFit."""


def import_ray(loopback_only: bool = False):
    """Ray, in its loopback-only mode when `loopback_only` (Ray reads the mode when it is imported,
    and its processes read it from their environment)."""
    if loopback_only:
        from .loopback_node import LOOPBACK_ONLY
        os.environ.update(LOOPBACK_ONLY)
    try:
        import ray
    except ImportError:
        raise ClusterError("Ray is not installed here: pip install 'spritefit[cluster]' "
                           "(the same version of Ray on this machine and on the cluster's nodes)") from None
    if loopback_only:
        import ray._private.ray_constants as constants
        constants.ENABLE_RAY_CLUSTER = False     # where Ray was imported before the mode was set
    return ray


def on_loopback(address: str) -> bool:
    """`auto` (a Ray instance of this command's own) or a cluster on this machine's loopback: this
    process then keeps Ray on 127.0.0.1 too, instead of advertising the machine's address."""
    if address == "auto":
        return True
    host = address.rpartition(":")[0].strip("[]")
    if host == "localhost":
        return True
    try:
        from .local import is_loopback
        return is_loopback(host)
    except ValueError:
        return False


def connect(address: str):
    """Join (or start) the cluster and check its nodes; returns the `ray` module."""
    global _connected
    for name, value in DRIVER_KEEPALIVE.items():
        os.environ.setdefault(name, value)
    ray = import_ray(loopback_only=on_loopback(address))
    if _connected is not None and ray.is_initialized():
        if _connected != address:
            raise ClusterError(f"this process already uses the Ray cluster at {_connected}; "
                               f"restart it to use {address}")
        return ray
    if address != "auto":
        check_reachable(address)
    options = dict(log_to_driver=False, logging_level=logging.ERROR, namespace="spritefit")
    try:
        if address == "auto":   # this machine only: its Ray listens on the loopback interface
            ray.init(address="local", include_dashboard=False, _node_ip_address="127.0.0.1", **options)
        else:
            ray.init(address=address, **options)
    except (ConnectionError, RuntimeError, ValueError, TimeoutError) as exc:
        raise ClusterError(f"cannot join the Ray cluster at {address}: {first_line(exc)} (a cluster with token "
                           f"authentication needs its token here too: ~/.ray/auth_token or RAY_AUTH_TOKEN)") from None
    _connected = address
    try:
        check_nodes(ray, address)
    except ClusterError:
        disconnect()
        raise
    return ray


def disconnect() -> None:
    global _connected
    if _connected is not None:
        import ray
        ray.shutdown()
        _connected = None


def check_reachable(address: str) -> None:
    """Fail fast, with a clear reason, where ray.init would retry for a minute."""
    host, separator, port = address.rpartition(":")
    if not separator or not host or not port.isdigit() or "://" in address:
        raise ClusterError(f"Ray address {address!r}: write it as HOST:PORT (the head node's GCS port, "
                           f"6379 unless `ray start --head --port` says otherwise), or `auto`")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=REACH_TIMEOUT_S):
            pass
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise ClusterError(f"cannot reach the Ray cluster at {address}: {reason} (is `ray start --head` "
                           f"running there, and is the port open to this machine?)") from None


def _probe() -> dict:
    # Defined inside no module-level name that needs SpriteFit: see probe_function().
    import sys
    try:
        import spritefit
        import spritefit._native  # noqa: F401  (the compiled renderer must load too)
        version = spritefit.__version__
    except Exception as exc:   # a broken install is reported, whatever it raises
        return {"error": f"{type(exc).__name__}: {exc}", "python": sys.executable}
    return {"version": version, "python": sys.executable}


def probe_function():
    """_probe, shipped by value: it must run on a node that cannot import SpriteFit at all, which a
    function shipped by reference (module and name) cannot."""
    import types
    return types.FunctionType(_probe.__code__, {"__builtins__": __builtins__}, "spritefit_probe")


def check_nodes(ray, address: str) -> None:
    """Every alive node imports the same SpriteFit version as this process."""
    from .. import __version__
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy
    probe = ray.remote(num_cpus=0, max_retries=0)(probe_function())
    nodes = [node["NodeID"] for node in ray.nodes() if node.get("Alive")]
    refs = [probe.options(scheduling_strategy=NodeAffinitySchedulingStrategy(node, soft=False)).remote()
            for node in nodes]
    try:
        answers = ray.get(refs, timeout=PROBE_TIMEOUT_S)
    except Exception as exc:   # a node that died or hangs while being asked
        raise ClusterError(f"the nodes of the Ray cluster at {address} did not answer: {first_line(exc)}") from None
    for node, answer in zip(nodes, answers):
        if "error" in answer:
            raise ClusterError(f"node {node[:8]} of the Ray cluster at {address} cannot run SpriteFit "
                               f"({answer['error']}): install spritefit=={__version__} in {answer['python']} "
                               f"on every node")
        if answer["version"] != __version__:
            raise ClusterError(f"node {node[:8]} of the Ray cluster at {address} has SpriteFit "
                               f"{answer['version']}, this machine {__version__}: install the same version "
                               f"on every node")


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
