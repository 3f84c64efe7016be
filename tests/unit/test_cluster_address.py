"""`--ray-address` checked before anything starts: one line and exit 2 for an address where nothing answers, for a
machine without Ray, and for `auto` on a node in no cluster; `auto` resolved to the address `ray start` recorded."""

import socket
import sys

import pytest

from helpers import RAY_ENV, tuibench

RUN = ["run", "--dataset", "random", "--num-requests", "2", "--input-len", "4", "--output-len", "2"]


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]  # closed again when the probe is


def test_an_address_where_nothing_answers_is_one_line_and_exit_2(cli_env, tmp_path):
    port = _closed_port()
    result = tuibench(*RUN, "--ray-address", f"127.0.0.1:{port}", env={**cli_env, **RAY_ENV}, timeout=60)
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert f"--ray-address 127.0.0.1:{port}: no Ray cluster answers there" in line and "ray start --head" in line


def test_without_ray_installed_is_one_line_naming_the_extra(cli_env, tmp_path):
    # Ray is installed here: a sitecustomize hides it from the import system, as on a machine without it.
    hide = tmp_path / "hide"
    hide.mkdir()
    (hide / "sitecustomize.py").write_text("import sys\nsys.modules['ray'] = None\n")
    result = tuibench(*RUN, "--ray-address", "auto", env={**cli_env, "PYTHONPATH": str(hide)}, timeout=60)
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert "--ray-address needs Ray, which is not installed here: pip install 'tuibench[ray]'" in line


def test_auto_on_a_node_in_no_cluster_says_how_to_start_one(tmp_path, monkeypatch):
    pytest.importorskip("ray")
    from tuibench.cluster import address
    from tuibench.core.errors import UserError

    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    monkeypatch.setattr(address, "_CURRENT_CLUSTER", tmp_path / "ray_current_cluster")
    with pytest.raises(UserError, match="this node is in no Ray cluster .* `ray start --head`"):
        address.resolve_ray_address("auto")


def test_auto_is_the_address_ray_start_recorded_and_other_forms_are_refused(tmp_path, monkeypatch):
    pytest.importorskip("ray")
    from tuibench.cluster import address
    from tuibench.core.errors import UserError

    with socket.socket() as head:  # something listening, standing in for a GCS
        head.bind(("127.0.0.1", 0))
        head.listen()
        port = head.getsockname()[1]
        (tmp_path / "ray_current_cluster").write_text(f"127.0.0.1:{port}\n")
        monkeypatch.delenv("RAY_ADDRESS", raising=False)
        monkeypatch.setattr(address, "_CURRENT_CLUSTER", tmp_path / "ray_current_cluster")
        assert address.resolve_ray_address("auto") == f"127.0.0.1:{port}"
        monkeypatch.setenv("RAY_ADDRESS", f"127.0.0.1:{port}")
        assert address.resolve_ray_address("auto") == f"127.0.0.1:{port}"
    with pytest.raises(UserError, match="Ray Client addresses are not supported"):
        address.resolve_ray_address("ray://10.0.0.1:10001")
    with pytest.raises(UserError, match="give the head node's host:port"):
        address.resolve_ray_address("10.0.0.1")


def test_without_ray_address_ray_is_not_imported(tmp_path):
    import subprocess

    code = ("import sys\nfrom tuibench.runner.plans import build_plan\nfrom tuibench.core.plan import PlanRequest\n"
            "build_plan(PlanRequest(datasets=('random',), num_requests=2))\nprint('ray' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.stdout.strip() == "False", result.stderr
