"""One more Ray node on this machine's loopback interface, joined to a head that listens there:
`python path/to/loopback_node.py --address 127.0.0.1:PORT --num-cpus N --temp-dir DIR` (run by path,
standard library and Ray only, so a node's Python needs no SpriteFit).

Why not `ray start --address=...`: Ray turns 127.0.0.1 into the machine's network address
(`ray._private.services.resolve_ip_for_localhost`), and then every server of the node listens on
all interfaces. The only mode that keeps it on 127.0.0.1, `RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`,
is also the mode in which `ray start` refuses to add a node to a cluster. So this starts the node
the way `ray start` does after its checks (and as Ray's own multi-node test helper,
`ray.cluster_utils.Cluster`, does): a `ray._private.node.Node` with the node address given as
127.0.0.1, in loopback mode, so nothing it starts resolves the machine's address either. It blocks
until SIGTERM, then stops its processes, as `ray start --block` does.
"""
from __future__ import annotations

import argparse
import os
import signal
import sys
import time

LOOPBACK = "127.0.0.1"
STARTED = "Ray runtime started"     # what `ray start` prints too, once a node runs
# In the environment of every Ray process that must stay on 127.0.0.1, and of the processes that
# submit work to such a cluster (or they advertise the machine's address to it).
LOOPBACK_ONLY = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="loopback_node.py")
    parser.add_argument("--address", required=True, help="the head's GCS address, 127.0.0.1:PORT")
    parser.add_argument("--num-cpus", type=int, default=1)
    parser.add_argument("--object-store-memory", type=int, default=120_000_000)
    parser.add_argument("--temp-dir", default=None)
    args = parser.parse_args(argv)
    if not args.address.startswith(f"{LOOPBACK}:"):
        parser.error(f"--address must be on {LOOPBACK}, not {args.address}")
    os.environ.update(LOOPBACK_ONLY)     # before Ray reads it, and for every child

    import ray._private.node
    import ray._private.parameter
    params = ray._private.parameter.RayParams(
        node_ip_address=LOOPBACK, node_name=LOOPBACK, gcs_address=args.address, num_cpus=args.num_cpus,
        num_gpus=0, object_store_memory=args.object_store_memory, temp_dir=args.temp_dir,
        include_log_monitor=True, node_manager_port=0)
    node = ray._private.node.Node(params, head=False, shutdown_at_exit=True, spawn_reaper=True, connect_only=False)
    print(f"{STARTED} on {LOOPBACK}: {node.node_id}", flush=True)

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))    # sys.exit runs Ray's exit handler: stops the node
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    sys.exit(main())
