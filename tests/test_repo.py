"""The repository's own conventions: dependency lists agree, notebooks are output-free and follow the course
format, the chapter map in README lists every notebook in order."""

import json
import re
import tomllib
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))


def _name(req: str) -> str:
    return re.split(r"[<>=!~\[; ]", req.strip(), maxsplit=1)[0].lower().replace("_", "-")


def test_environment_yml_lists_the_same_dependencies_as_pyproject():
    py = tomllib.loads((REPO / "pyproject.toml").read_text())
    deps = {_name(d) for d in py["project"]["dependencies"]}
    deps |= {_name(d) for d in py["project"]["optional-dependencies"]["dev"]}
    env = yaml.safe_load((REPO / "environment.yml").read_text())
    pip_deps = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    conda = {_name(d) for d in env["dependencies"] if isinstance(d, str)} - {"python", "pip"}
    assert conda == set(), f"environment.yml: put packages under pip:, found conda packages {conda}"
    assert {_name(d) for d in pip_deps} == deps


def test_constraints_pin_the_torch_pair():
    text = (REPO / "constraints.txt").read_text()
    assert "torch==2.14.1" in text and "torchvision==0.29.1" in text


def test_ci_runs_both_readme_commands_and_checks_the_demo():
    """.ci/run runs make test, make test-ui and make demo, in that order, then checks results.json."""
    lines = [ln.strip() for ln in (REPO / ".ci" / "run").read_text().splitlines()]
    order = [lines.index(cmd) for cmd in ("make test", "make test-ui", "make demo")]
    assert order == sorted(order)
    assert "runs/demo/results.json" in (REPO / ".ci" / "run").read_text()
    readme = (REPO / "README.md").read_text()
    assert "make demo" in readme and "make test" in readme


def test_notebooks_exist_and_are_numbered_in_order():
    names = [p.name for p in NOTEBOOKS]
    assert names, "no notebooks"
    numbers = [int(n[:2]) for n in names]
    assert all(re.match(r"^\d\d_[a-z0-9_]+\.ipynb$", n) for n in names), names
    assert numbers == list(range(len(numbers))), (
        f"chapters must be numbered 00, 01, ... without gaps: {names}"
    )


def test_readme_chapter_map_lists_every_notebook_in_order():
    readme = (REPO / "README.md").read_text()
    positions = [readme.find(p.name) for p in NOTEBOOKS]
    missing = [p.name for p, pos in zip(NOTEBOOKS, positions, strict=True) if pos < 0]
    assert not missing, f"README chapter map misses {missing}"
    assert positions == sorted(positions), "README lists the chapters out of order"


def _cells(path):
    return json.loads(path.read_text(encoding="utf-8"))["cells"]


def test_notebooks_are_committed_without_outputs():
    dirty = [
        p.name
        for p in NOTEBOOKS
        for c in _cells(p)
        if c["cell_type"] == "code" and (c.get("outputs") or c.get("execution_count"))
    ]
    assert not dirty, f"strip outputs before committing: {sorted(set(dirty))}"


def test_every_notebook_follows_the_course_format():
    for p in NOTEBOOKS:
        cells = _cells(p)
        first_md = next(c for c in cells if c["cell_type"] == "markdown")
        assert "learning goals" in "".join(first_md["source"]).lower(), (
            f"{p.name}: no learning goals at the top"
        )
        tagged = [c for c in cells if "parameters" in c.get("metadata", {}).get("tags", [])]
        assert len(tagged) == 1, f"{p.name}: needs exactly one cell tagged 'parameters'"
        tail = "".join("".join(c["source"]) for c in cells[-3:] if c["cell_type"] == "markdown").lower()
        assert "summary" in tail and "exercises" in tail, f"{p.name}: must end with a summary and exercises"
        code = ["".join(c["source"]) for c in cells if c["cell_type"] == "code"]
        assert any(re.search(r"^\s*assert ", src, re.M) for src in code), f"{p.name}: no assert cell"
        library = [
            "".join(c["source"])
            for c in cells
            if c["cell_type"] == "code" and "teaching" not in c.get("metadata", {}).get("tags", [])
        ]
        defs = [src for src in library if re.search(r"^\s*(def|class) ", src, re.M)]
        assert not defs, f"{p.name}: library code belongs in the package, not the notebook"


# Chapters that build their core method from scratch before using the package's (issue 16, d2l style).
TEACHING_CHAPTERS = ("01", "04", "05", "07", "08")
TEACHING_MAX_LINES = 30  # the algorithm in about 15 lines, plus its check against the package


def _teaching_cells(path):
    return ["".join(c["source"]) for c in _cells(path) if "teaching" in c.get("metadata", {}).get("tags", [])]


def test_teaching_versions_are_short_marked_and_checked_against_the_package():
    """A code cell tagged ``teaching`` may define functions: it is a from-scratch version of a method, says so
    in its first line, stays short, and asserts that it equals the package's function on real data."""
    for p in NOTEBOOKS:
        for src in _teaching_cells(p):
            first = src.lstrip().splitlines()[0].lower()
            assert first.startswith("# teaching version"), f"{p.name}: a teaching cell must say so: {first!r}"
            n = len([ln for ln in src.splitlines() if ln.strip()])
            assert n <= TEACHING_MAX_LINES, (
                f"{p.name}: teaching cell of {n} lines (at most {TEACHING_MAX_LINES})"
            )
            assert re.search(r"^\s*assert .*(allclose|isclose|array_equal|assert_close|==|<)", src, re.M), (
                f"{p.name}: a teaching cell must assert it agrees with the package"
            )
    missing = [
        ch
        for ch in TEACHING_CHAPTERS
        if not any(_teaching_cells(p) for p in NOTEBOOKS if p.name.startswith(ch))
    ]
    assert not missing, f"chapters without a from-scratch teaching cell: {missing}"


# ----------------------------------------------------------------------------- the package's own structure
PACKAGE = REPO / "lowlight_matting"
MAX_LINES = 500


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _package_modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _import_edges(name: str, path: Path, known: set[str]) -> set[str]:
    """The lowlight_matting modules that ``name`` (defined in ``path``) imports, anywhere in the file."""
    import ast

    is_package = path.name == "__init__.py"

    def resolve(target: str) -> str | None:
        # the longest known module that ``target`` names (a.b.func -> a.b); None outside the package
        while target and target not in known:
            target = target.rpartition(".")[0]
        return target or None

    edges: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".") if is_package else name.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                base_name = ".".join(base + ([node.module] if node.module else []))
            else:
                base_name = node.module or ""
            # ``from pkg import sub`` imports the submodule; ``from pkg import obj`` runs pkg's __init__
            targets = [
                f"{base_name}.{a.name}" if f"{base_name}.{a.name}" in known else base_name for a in node.names
            ]
        else:
            continue
        for t in targets:
            resolved = resolve(t) if t.split(".")[0] == "lowlight_matting" else None
            if resolved and resolved != name:
                edges.add(resolved)
    return edges


def _find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle per strongly connected component with more than one module (Tarjan), as a closed path."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                components.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)

    cycles = []
    for comp in components:  # a shortest path back to the start, inside the component (BFS)
        members, start = set(comp), comp[0]
        parent: dict[str, str] = {}
        frontier = [start]
        while start not in parent and frontier:
            nxt = []
            for v in frontier:
                for w in sorted(graph[v] & members):
                    if w not in parent:
                        parent[w] = v
                        nxt.append(w)
            frontier = nxt
        path = [start]
        while True:
            path.append(parent[path[-1]])
            if path[-1] == start:
                break
        cycles.append(path[::-1])
    return cycles


def test_find_cycles_reports_a_closed_path():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a", "d"}, "d": set(), "e": {"e"}}
    assert _find_cycles(graph) == [["a", "b", "c", "a"]]
    assert _find_cycles({"a": {"b"}, "b": set()}) == []


def test_import_edges_resolve_relative_function_local_and_package_imports(tmp_path):
    pkg = tmp_path / "lowlight_matting"
    (pkg / "sub").mkdir(parents=True)
    files = {
        "__init__.py": "",
        "sub/__init__.py": "from lowlight_matting.sub.inner import f\n",
        "sub/inner.py": "def f():\n    from ..top import g\n    from . import other\n",
        "sub/other.py": "import lowlight_matting.top as t\nfrom lowlight_matting.sub import f\n",
        "top.py": "import numpy\nfrom lowlight_matting import sub\nfrom lowlight_matting.top import x\n",
    }
    for rel, text in files.items():
        (pkg / rel).write_text(text)
    known = {"lowlight_matting", "lowlight_matting.sub", "lowlight_matting.sub.inner"}
    known |= {"lowlight_matting.sub.other", "lowlight_matting.top"}

    def edges(rel, name):
        return _import_edges(name, pkg / rel, known)

    assert edges("sub/__init__.py", "lowlight_matting.sub") == {"lowlight_matting.sub.inner"}
    assert edges("sub/inner.py", "lowlight_matting.sub.inner") == {
        "lowlight_matting.top",
        "lowlight_matting.sub.other",
    }
    # an import of a name from a package is an edge to the package's __init__
    assert edges("sub/other.py", "lowlight_matting.sub.other") == {
        "lowlight_matting.top",
        "lowlight_matting.sub",
    }
    assert edges("top.py", "lowlight_matting.top") == {"lowlight_matting.sub"}


def test_no_import_cycles_between_package_modules():
    """No cycle in the graph of lowlight_matting modules, counting every ``import`` / ``from ... import``
    anywhere in a file (function-local imports too: a cycle hidden in a function still ties the two modules
    together). Relative imports are resolved; ``from pkg import name`` is an edge to ``pkg/__init__.py``
    unless ``name`` is a submodule; a package ``__init__`` re-exporting from a submodule is an edge from the
    package to that submodule. The implicit import of parent packages is not counted (every submodule would
    otherwise form a cycle with its own package)."""
    modules = _package_modules()
    known = set(modules)
    graph = {name: _import_edges(name, path, known) for name, path in modules.items()}
    cycles = _find_cycles(graph)
    assert not cycles, "import cycles in lowlight_matting:\n" + "\n".join(" -> ".join(c) for c in cycles)


def test_no_module_is_longer_than_500_lines_without_a_stated_reason():
    """A module of more than 500 lines (``len(text.splitlines())``) must say why in its module docstring: a
    line that starts with ``Length:`` followed by the reason in at least five words, e.g.
    ``Length: one table of every preset; splitting it would scatter the registry.``"""
    import ast

    too_long = []
    for path in _package_modules().values():
        text = path.read_text(encoding="utf-8")
        n = len(text.splitlines())
        if n <= MAX_LINES:
            continue
        doc = ast.get_docstring(ast.parse(text)) or ""
        reasons = [
            ln.strip()[len("Length:") :] for ln in doc.splitlines() if ln.strip().startswith("Length:")
        ]
        if not any(len(r.split()) >= 5 for r in reasons):
            too_long.append(f"{path.relative_to(REPO)}: {n} lines")
    assert not too_long, (
        f"modules over {MAX_LINES} lines without a 'Length: <reason>' line in the module docstring:\n"
        + "\n".join(too_long)
    )
