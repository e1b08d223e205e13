"""The house plan (docs/architecture.md): domain code never imports the CLI, nothing imports back up the layers,
no cycles."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "maestro_cli"
DOMAIN = ("data", "symbolic", "tokens", "audio", "align", "metrics", "report")
#: What each part of the package must never import (prefixes of maestro_cli module names).
FORBIDDEN = {
    **{f"maestro_cli.{name}": ("maestro_cli.cli", "maestro_cli.models", "maestro_cli.backends", "maestro_cli.plugins",
                               "maestro_cli.registry", "maestro_cli.pipelines")
       for name in ("data", "symbolic", "tokens", "audio")},
    "maestro_cli.align": ("maestro_cli.cli", "maestro_cli.models", "maestro_cli.backends", "maestro_cli.pipelines"),
    # metrics compute numbers from what they are given: no backend is looked up, no pipeline runs there
    "maestro_cli.metrics": ("maestro_cli.cli", "maestro_cli.models", "maestro_cli.backends", "maestro_cli.registry",
                            "maestro_cli.plugins", "maestro_cli.outputs", "maestro_cli.pipelines"),
    "maestro_cli.pipelines": ("maestro_cli.cli",),
    "maestro_cli.report": ("maestro_cli.cli", "maestro_cli.models", "maestro_cli.backends", "maestro_cli.plugins",
                           "maestro_cli.registry", "maestro_cli.pipelines"),
    "maestro_cli.display": ("maestro_cli.cli", "maestro_cli.models", "maestro_cli.backends"),
    "maestro_cli.models": ("maestro_cli.cli", "maestro_cli.backends", "maestro_cli.plugins"),
    "maestro_cli.backends": ("maestro_cli.cli",),
    "maestro_cli.protocols": ("maestro_cli.cli", "maestro_cli.backends", "maestro_cli.models"),
    "maestro_cli.outputs": ("maestro_cli.cli", "maestro_cli.backends", "maestro_cli.models"),
    "maestro_cli.reporting": ("maestro_cli.cli", "maestro_cli.backends", "maestro_cli.models"),
}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path, *, top_level_only: bool = False) -> set[str]:
    """The maestro_cli modules a file imports (at any depth, or only at module level)."""
    tree = ast.parse(path.read_text())
    nodes = tree.body if top_level_only else ast.walk(tree)
    found = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    modules = {module_name(p) for p in PACKAGE.rglob("*.py")}
    return {name for name in found if name in modules and name.startswith("maestro_cli.")}


SOURCES = sorted(PACKAGE.rglob("*.py"))


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: module_name(p))
def test_no_import_runs_back_up_the_layers(path):
    name = module_name(path)
    rules = [banned for owner, banned in FORBIDDEN.items() if name == owner or name.startswith(owner + ".")]
    for banned in rules:
        bad = sorted(i for i in imports(path) if i.startswith(banned))
        assert not bad, f"{name} imports {bad}"


def test_no_import_cycles_between_modules():
    """Function-level imports count too: a lazy import hides a cycle from the interpreter, not from the reader."""
    graph = {module_name(p): imports(p) - {module_name(p)} for p in SOURCES}
    state: dict[str, int] = {}

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                raise AssertionError(" -> ".join(trail[trail.index(nxt):] + [nxt]) if nxt in trail else nxt)
            if nxt not in state:
                visit(nxt, trail + [nxt])
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])


@pytest.mark.slow
@pytest.mark.parametrize("package", [*DOMAIN, "models", "backends", "pipelines", "protocols", "outputs", "reporting",
                                     "display", "registry", "plugins"])
def test_domain_packages_load_neither_typer_nor_rich(package):
    modules = [module_name(p) for p in SOURCES if module_name(p).startswith(f"maestro_cli.{package}")]
    code = "import sys\n" + "".join(f"import {m}\n" for m in modules) + \
        "print(','.join(m for m in ('typer', 'rich') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "", f"importing maestro_cli.{package} loads {out.stdout.strip()}"


@pytest.mark.slow
def test_every_maestro_import_resolves():
    """Lazy imports inside functions fail only when they run: check every `from maestro_cli... import name`."""
    code = """
import ast, importlib, pathlib, sys
root = pathlib.Path(sys.argv[1])
bad = []
for path in sorted([*root.joinpath("maestro_cli").rglob("*.py"), *root.joinpath("plugins").rglob("*.py")]):
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith("maestro_cli"):
            module = importlib.import_module(node.module)
            for alias in node.names:
                if not hasattr(module, alias.name):
                    try:
                        importlib.import_module(f"{node.module}.{alias.name}")
                    except ImportError:
                        bad.append(f"{path}: from {node.module} import {alias.name}")
print("\\n".join(bad))
"""
    out = subprocess.run([sys.executable, "-c", code, str(PACKAGE.parent)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == ""
