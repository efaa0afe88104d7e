"""The architecture contract: import-linter's contracts in setup.cfg hold (layers, no cycles, pure decoding,
sinks apart from sources, the lab out of the runtime), and no module fills a registry by importing another."""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "aws_s3_wodle"


def test_import_linter_contracts_are_kept():
    lint = Path(sys.executable).with_name("lint-imports")
    proc = subprocess.run([str(lint), "--config", str(ROOT / "setup.cfg")], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    kept = [line for line in proc.stdout.splitlines() if line.rstrip().endswith(("KEPT", "KEPT (1 ignored import)"))
            or " KEPT" in line]
    assert len(kept) >= 5, proc.stdout  # layers, decode-pure, sinks-alone, lab-apart, no-cycles


def _imports_after_code(path: Path) -> list[int]:
    """Lines of module-level imports that come after the first function or class: an import at the end of a
    file is how a module used to register itself in another's table."""
    tree = ast.parse(path.read_text())
    seen_def = False
    late = []
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            seen_def = True
        elif seen_def and isinstance(node, (ast.Import, ast.ImportFrom)):
            late.append(node.lineno)
    return late


def test_no_module_imports_at_its_end():
    offenders = {str(p.relative_to(ROOT)): lines for p in PACKAGE.rglob("*.py") if (lines := _imports_after_code(p))}
    assert offenders == {}


def test_no_module_writes_into_another_modules_table():
    """`OTHER.TABLE[key] = value` at module level (registration by import side effect) is nowhere."""
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        for node in ast.parse(path.read_text()).body:
            targets = node.targets if isinstance(node, ast.Assign) else []
            for body in ([node] if isinstance(node, ast.Assign) else getattr(node, "body", []) if isinstance(node, ast.For) else []):
                targets += body.targets if isinstance(body, ast.Assign) else []
            for t in targets:
                if isinstance(t, ast.Subscript):
                    base = t.value
                    if isinstance(base, ast.Attribute) or (isinstance(base, ast.Name) and not _defined_here(path, base.id)):
                        offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert offenders == []


def _defined_here(path: Path, name: str) -> bool:
    tree = ast.parse(path.read_text())
    for node in tree.body:
        if isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(isinstance(t, ast.Name) and t.id == name for t in targets):
                return True
    return False
