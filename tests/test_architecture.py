"""The package's shape, as conventions.md asks for it: checked on the source, so a change that breaks it fails here.

import-linter (run by scripts/test.sh) proves the layers and the absence of import cycles; these tests check what it
cannot see: names, not modules.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "ragreports"
MODULES = sorted(PACKAGE.rglob("*.py"))


def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def _own_imports(tree: ast.AST):
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "ragreports":
            yield node
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "ragreports":
                    yield node


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_module_imports_another_modules_private_names(path):
    for node in _own_imports(_tree(path)):
        if isinstance(node, ast.ImportFrom):
            private = [a.name for a in node.names if a.name.startswith("_")]
            assert not private, f"{path.name}:{node.lineno} imports private names {private} from {node.module}"


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_own_modules_are_imported_at_the_top(path):
    tree = _tree(path)
    top = {id(n) for n in tree.body}
    inner = [n.lineno for n in _own_imports(tree) if id(n) not in top]
    assert not inner, f"{path.name}: imports of ragreports modules inside functions at lines {inner}"


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_compatibility_shims(path):
    tree = _tree(path)
    names = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
    if path == PACKAGE / "__init__.py":
        return  # the public API is exported lazily from the package root, and only there
    assert "__getattr__" not in names, f"{path.name} defines a module __getattr__ (a re-export shim)"
    assert "# noqa: F401" not in path.read_text(encoding="utf-8"), f"{path.name} re-exports names (noqa: F401)"


def test_subpackage_inits_hold_no_code():
    for init in PACKAGE.glob("*/__init__.py"):
        if init.parent.name == "data":
            continue  # the data package holds the rule loader
        body = [n for n in _tree(init).body if not (isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant))]
        assert not body, f"{init.relative_to(PACKAGE)} should hold only its docstring"


def test_public_api_names_resolve():
    import ragreports

    for name in ragreports.__all__:
        assert getattr(ragreports, name) is not None, name
