"""The harness's folders read as its data path, contract -> stack -> scenarios -> run -> judge -> report, and each
imports only what comes before it; the emulators and the Toxiproxy-compatible server stand alone
(they run as their own processes). A violation names the importing module and what it imported."""

from __future__ import annotations

import ast
import shutil
from pathlib import Path

import chaos

ROOT = Path(chaos.__file__).parent
PIPELINE = ["contract", "stack", "scenarios", "run", "judge", "report", "soak", "suite", "lanes", "commands", "plugin", "mutants"]
STANDALONE = {"emulators", "toxiproxy"}
# The scenario format validates metric, claim and reason names against the judge's vocabulary, rate
# bounds against the judge's statistics (can its phase ever decide it?) and toxic types against the
# Toxiproxy-compatible server's; `genchaos toxiproxy` starts that server.
ALLOWED = {("scenarios", "chaos.judge.registry"), ("scenarios", "chaos.judge.stats"), ("scenarios", "chaos.toxiproxy.toxics"),
           ("commands", "chaos.toxiproxy")}


def chaos_imports(path: Path, root: Path) -> set[str]:
    module = ".".join(path.relative_to(root.parent).with_suffix("").parts)
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.startswith("chaos.")}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith("chaos"):
            found |= {f"{node.module}.{alias.name}" if node.module == "chaos" else node.module for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level:
            base = module.split(".")[: -node.level]
            found.add(".".join([*base, node.module] if node.module else base))
    return found


def violations(root: Path = ROOT) -> list[str]:
    problems = []
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(root).parts
        if len(parts) < 2:
            continue  # chaos/cli.py, chaos/__main__.py, chaos/suite.py and chaos/lanes.py sit on top of the pipeline
        layer = parts[0]
        for imported in chaos_imports(path, root):
            target = imported.split(".")[1]
            if target == layer or (layer, imported) in ALLOWED or (layer, ".".join(imported.split(".")[:3])) in ALLOWED:
                continue
            if layer in STANDALONE or target in STANDALONE:
                ok = False
            else:
                ok = target in PIPELINE and PIPELINE.index(target) < PIPELINE.index(layer)
            if not ok:
                problems.append(f"{path.relative_to(root.parent)} imports {imported}")
    return problems


def test_each_layer_imports_only_the_layers_before_it():
    assert violations() == []


def test_a_runner_module_that_judges_is_reported(tmp_path: Path):
    copy = shutil.copytree(ROOT, tmp_path / "chaos", ignore=shutil.ignore_patterns("__pycache__"))
    (copy / "run" / "_planted_for_test.py").write_text("from chaos.judge.verdicts import judge\n")
    assert violations(copy) == ["chaos/run/_planted_for_test.py imports chaos.judge.verdicts"]
