"""`--ray-address`, checked in the parent before anything starts: Ray importable, a cluster named, and its GCS
port answering. Ray itself is not imported here: `ray.init` against an address where nothing listens retries for
a minute before it says so, where a socket says it in milliseconds."""

import importlib.util
import os
import socket
from pathlib import Path

from tuibench.core.errors import UserError

INSTALL_HINT = "pip install 'tuibench[ray]'"
# Where `ray start` on this node writes the address of the cluster it joined: what `auto` means to Ray too.
_CURRENT_CLUSTER = Path(os.environ.get("RAY_TMPDIR", "/tmp")) / "ray" / "ray_current_cluster"
_CONNECT_TIMEOUT_S = 3.0


def resolve_ray_address(address: str) -> str:
    """host:port of the cluster's GCS; `auto` is the cluster this node joined (RAY_ADDRESS, then `ray start`'s
    record). UserError when Ray is missing, nothing is named, or nothing answers there."""
    if importlib.util.find_spec("ray") is None:
        raise UserError(f"--ray-address needs Ray, which is not installed here: {INSTALL_HINT}")
    if address.startswith("ray://"):
        raise UserError(f"--ray-address {address}: Ray Client addresses are not supported; run tuibench on a node of "
                        "the cluster and give its GCS address (host:6379), or auto")
    if address == "auto":
        address = os.environ.get("RAY_ADDRESS", "").strip() or _recorded_address()
        if not address or address == "auto":
            raise UserError("--ray-address auto: this node is in no Ray cluster (no RAY_ADDRESS, no `ray start` "
                            "here): start one with `ray start --head`, or give the head's host:port")
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise UserError(f"--ray-address {address}: give the head node's host:port (e.g. 10.0.0.1:6379), or auto")
    try:
        with socket.create_connection((host, int(port)), timeout=_CONNECT_TIMEOUT_S):
            pass
    except OSError as exc:
        raise UserError(f"--ray-address {address}: no Ray cluster answers there ({exc.strerror or exc}): "
                        "start it with `ray start --head`, or check the address") from None
    return address


def _recorded_address() -> str:
    try:
        return _CURRENT_CLUSTER.read_text().strip()
    except OSError:
        return ""
