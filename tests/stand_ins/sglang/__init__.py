"""A stand-in for SGLang (tests/stand_ins/README.md): `python -m sglang.launch_server` with this folder on the path,
and `sglang.Engine` for offline runs."""

from sglang.engine import Engine

__all__ = ["Engine"]
