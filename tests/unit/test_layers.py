"""The layers hold: `lint-imports` with the contracts in pyproject.toml (core <- analysis <- models <- the engine
tier, itself layered <- scenarios <- runner <- report <- ui <- web <- cli; the app reaches engines only across the
run service's process boundary; the domain imports no library), with no indirect-import allowance. Tried by hand:
`from tuibench.runner.plans import build_plan` added to ui/themes.py breaks the second contract, through
runner.plans -> backends -> backends.engine -> models.convert -> torch."""

import shutil
import subprocess
import sys
from pathlib import Path


REPO = Path(__file__).resolve().parents[2]


def test_the_import_contracts_are_kept():
    lint = shutil.which("lint-imports", path=str(Path(sys.executable).parent)) or "lint-imports"
    result = subprocess.run([lint], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "Contracts: 3 kept, 0 broken." in result.stdout
    assert "allow_indirect_imports" not in (REPO / "pyproject.toml").read_text()


def import_cycles(graph) -> list[list[str]]:
    """Every set of modules that import each other in a circle (the strongly connected components of the import
    graph with more than one module), each sorted, with package `__init__`s left out: a package that imports its
    own modules is not a circle Python trips on. Imports inside functions and under TYPE_CHECKING count: grimp
    reads every import statement, wherever it is."""
    packages = {m for m in graph.modules if graph.find_children(m)}
    edges = {m: sorted(graph.find_modules_directly_imported_by(m) - packages) for m in graph.modules - packages}
    # Tarjan's algorithm, iterative (the graph is a few hundred modules deep at most, but recursion is not needed).
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles = []
    for root in sorted(edges):
        if root in index:
            continue
        work = [(root, 0)]
        while work:
            module, at = work.pop()
            if at == 0:
                index[module] = low[module] = len(index)
                stack.append(module)
                on_stack.add(module)
            for position in range(at, len(edges[module])):
                imported = edges[module][position]
                if imported not in index:
                    work += [(module, position + 1), (imported, 0)]
                    break
                if imported in on_stack:
                    low[module] = min(low[module], index[imported])
            else:
                if low[module] == index[module]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == module:
                            break
                    if len(component) > 1:
                        cycles.append(sorted(component))
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[module])
    return sorted(cycles)


def describe_cycles(graph, cycles: list[list[str]]) -> str:
    """Each circle's imports, with the line that makes each: what to cut is usually one of them."""
    lines = []
    for cycle in cycles:
        lines.append("cycle: " + ", ".join(cycle))
        for importer in cycle:
            for imported in sorted(graph.find_modules_directly_imported_by(importer) & set(cycle)):
                for detail in graph.get_import_details(importer=importer, imported=imported):
                    lines.append(f"  {importer}:{detail['line_number']} {detail['line_contents']}")
    return "\n".join(lines)


def test_no_module_imports_itself_through_others():
    """No import cycle anywhere in tuibench, even through an import inside a function (which hides a circle from
    the interpreter until that function runs, and from import-linter's layers when both sides share a layer).
    Tried by hand: `from tuibench.report.comparison import to_json` added inside a function of report/figures.py
    gives "cycle: tuibench.report.comparison, tuibench.report.figures" with both import lines."""
    import grimp

    graph = grimp.build_graph("tuibench", cache_dir=None)
    cycles = import_cycles(graph)
    assert cycles == [], describe_cycles(graph, cycles)


def test_the_cycle_search_finds_a_circle_through_a_function_level_import(tmp_path, monkeypatch):
    """The search itself, on a package made for it: a imports b at the top, b imports a inside a function, c
    imports a (no circle), and the package's __init__ imports a (left out)."""
    import grimp

    package = tmp_path / "circle_pkg"
    package.mkdir()
    (package / "__init__.py").write_text("from circle_pkg import a\n")
    (package / "a.py").write_text("from circle_pkg import b\n")
    (package / "b.py").write_text("def f():\n    from circle_pkg import a\n    return a\n")
    (package / "c.py").write_text("import circle_pkg.a\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    graph = grimp.build_graph("circle_pkg", cache_dir=None)
    assert import_cycles(graph) == [["circle_pkg.a", "circle_pkg.b"]]
    assert "circle_pkg.b:2 from circle_pkg import a" in describe_cycles(graph, import_cycles(graph))


def duplicate_file_names(package: Path) -> dict[str, list[str]]:
    """File names (less __init__.py) that more than one module of the package has, with their paths."""
    paths: dict[str, list[str]] = {}
    for path in sorted(package.rglob("*.py")):
        if path.name != "__init__.py":
            paths.setdefault(path.name, []).append(str(path.relative_to(package.parent)))
    return {name: found for name, found in paths.items() if len(found) > 1}


def test_no_two_modules_share_a_file_name():
    """One file per name: an editor's tab, a traceback or a grep hit names one module, not one of several."""
    found = duplicate_file_names(REPO / "tuibench")
    assert found == {}, "\n".join(f"{name}: {', '.join(paths)}" for name, paths in sorted(found.items()))
