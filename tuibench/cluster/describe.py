"""A run's cluster in words, from what its environment recorded (pure: no Ray here)."""


def cluster_lines(environment: dict) -> list[str]:
    """A run on a Ray cluster: its address, then a line per node with its CPUs, GPUs and clock against the run's."""
    cluster = environment.get("cluster")
    if not cluster:
        return []
    nodes = cluster.get("nodes", [])
    lines = [f"ray cluster {cluster.get('address', '?')}: {len(nodes)} node(s)"]
    for node in nodes:
        lines.append(f"  {node['label']} ({node.get('hostname') or '?'}): {node['cpus']:g} CPUs, {node['gpus']:g} GPUs, "
                     f"clock {node['clock_offset_ms']:+.3f} ms ± {node['clock_uncertainty_ms']:.3f}")
    return lines
