"""The layers hold: `lint-imports` with the contracts in pyproject.toml (core <- analysis <- models <- engines and
clients <- runner <- report <- ui <- web <- cli; the app never imports an engine, torch or a library). Tried once
by hand: `import tuibench.backends` or `import torch` added to a ui module breaks the second contract."""

import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_the_import_contracts_are_kept():
    lint = shutil.which("lint-imports", path=str(Path(sys.executable).parent)) or "lint-imports"
    result = subprocess.run([lint], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "Contracts: 2 kept, 0 broken." in result.stdout


def test_core_has_no_import_cycle():
    """Within core, modules import one way only (the SLO lives with the spec, so events -> spec -> metrics ->
    events is no longer a circle). TYPE_CHECKING imports count: grimp reads them too."""
    import grimp

    graph = grimp.build_graph("tuibench")
    core = sorted(m for m in graph.find_children("tuibench.core"))
    cycles = [(a, b) for i, a in enumerate(core) for b in core[i + 1:]
              if graph.chain_exists(importer=a, imported=b) and graph.chain_exists(importer=b, imported=a)]
    assert cycles == []
