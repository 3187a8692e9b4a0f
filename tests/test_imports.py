"""The package's layer contract: each module imports only modules of its own sub-package or of a lower layer
(function-local imports included), and no two modules import each other in a cycle. The layers, lowest first, as
bendlab/__init__.py lists them:

    0 base      checks, files, paper, lazy
    1 models/   audio/          (peers: neither imports the other)
    2 bend/
    3 mapping   session   music/  (peers)
    4 video/    live/           (peers)
    5 ui/
"""

import ast
from pathlib import Path

import bendlab

PACKAGE = Path(bendlab.__file__).parent
LAYERS = {"checks": 0, "files": 0, "paper": 0, "lazy": 0, "models": 1, "audio": 1, "bend": 2, "mapping": 3,
          "session": 3, "music": 3, "video": 4, "live": 4, "ui": 5}
BASE = {"checks", "files", "paper", "lazy"}  # the base modules may import each other (no cycle: see below)


def module_name(path: Path) -> str:
    """bendlab/video/spec.py -> "video.spec"; bendlab/video/__init__.py -> "video"."""
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> set[str]:
    """The bendlab modules (dotted, inside the package) that a file imports anywhere in its source."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = package.split(".") if package else []
            base = base[:len(base) - (node.level - 1)]
            if node.module:
                found.add(".".join(base + node.module.split(".")))
            else:  # from . import a, b: modules (or names of the package itself)
                found.update(".".join(base + [a.name]) for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("bendlab."):
            found.add(node.module.removeprefix("bendlab."))
        elif isinstance(node, ast.Import):
            found.update(a.name.removeprefix("bendlab.") for a in node.names if a.name.startswith("bendlab."))
    return {m for m in found if m and m.split(".")[0] in LAYERS}


def import_graph() -> dict[str, set[str]]:
    """module -> the bendlab modules it imports (a sub-package's name stands for its __init__). The package's own
    __init__ (the front door: `from bendlab import render`) is above every layer and left out."""
    return {module_name(p): imports_of(p) - {module_name(p)} for p in PACKAGE.rglob("*.py") if module_name(p)}


def unit(module: str) -> str:
    return module.split(".")[0]


def layer_violations(graph: dict[str, set[str]]) -> list[str]:
    """"a -> b" for every import that reaches up a layer or across to a peer of the same layer."""
    bad = []
    for m, deps in sorted(graph.items()):
        for d in sorted(deps):
            u, v = unit(m), unit(d)
            if u == v or (u in BASE and v in BASE):
                continue
            if LAYERS[v] >= LAYERS[u]:
                bad.append(f"{m} -> {d} (layer {LAYERS[u]} imports layer {LAYERS[v]})")
    return bad


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle (as a path a -> ... -> a), or None. A sub-package's __init__ importing its own modules is
    not a cycle of theirs: edges into a package's __init__ from inside it are left out."""
    graph = {m: {d for d in deps if not (d == unit(d) and unit(m) == d)} for m, deps in graph.items()}
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(node, path):
        state[node] = 1
        for dep in sorted(graph.get(node, ())):
            if state.get(dep) == 1:
                return path[path.index(dep):] + [dep] if dep in path else path + [dep]
            if dep not in state:
                found = visit(dep, path + [dep])
                if found:
                    return found
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state:
            found = visit(start, [start])
            if found:
                return found
    return None


def test_every_module_belongs_to_a_layer():
    assert {unit(m) for m in import_graph() if m} <= set(LAYERS)


def test_no_module_imports_a_higher_layer_or_a_peer():
    bad = layer_violations(import_graph())
    assert not bad, "\n".join(bad)


def test_no_import_cycle_in_the_package():
    cycle = find_cycle(import_graph())
    assert cycle is None, " -> ".join(cycle)


def test_the_contract_catches_an_upward_import_a_peer_and_a_cycle():
    assert layer_violations({"bend.render": {"video.spec"}}) == ["bend.render -> video.spec (layer 2 imports layer 4)"]
    assert layer_violations({"live.loop": {"video.spec"}})  # peers
    assert layer_violations({"video.spec": {"bend.render", "video.folder", "checks"}, "files": {"checks"}}) == []
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_this_files_parser_sees_relative_and_local_imports():
    graph = import_graph()
    assert {"bend.render", "bend.bends"} <= graph["video.renderer"]  # module level, relative (..bend.render)
    assert "video.motion" in graph["video.renderer"]  # inside a function


def test_video_is_handed_its_frame_source():
    graph = import_graph()
    assert "video.cluster" not in graph["video.make"] and not any(unit(d) == "video" for d in graph["audio.features"])
    assert {"video.renderer", "video.spec", "video.mux"} <= graph["video.make"]


def test_every_name_a_package_offers_is_there():
    """The names each package imports on first use (`bendlab.lazy`) are its modules' own: a name misspelt in a
    package's table, or one a module no longer defines, fails here rather than at a user's first use."""
    import importlib
    import inspect
    for package in ("bendlab", "bendlab.models", "bendlab.audio", "bendlab.bend", "bendlab.video", "bendlab.live"):
        p = importlib.import_module(package)
        assert p.__all__, package
        for name in p.__all__:
            value = getattr(p, name)
            assert not inspect.ismodule(value), f"{package}.{name} is a module"


def test_a_name_that_is_also_a_modules_stays_what_the_package_offers():
    """`bendlab.bend.render` is the render function even when bend/render.py was imported first (Python then sets
    the module as its package's attribute); so are video.mux and models.family."""
    import subprocess
    import sys
    code = ("import inspect, bendlab.bend.render, bendlab.video.mux, bendlab.models.family\n"
            "from bendlab.bend import render\nfrom bendlab.video import mux\nfrom bendlab.models import family\n"
            "print([inspect.ismodule(f) for f in (render, mux, family)])")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert r.stdout.split() == ["[False,", "False,", "False]"], r.stderr
