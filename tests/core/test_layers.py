"""The import rules of the README's layout section, checked on the source.

Every `import` and `from ... import` of an `snnc` module, at module level or inside a
function, is read with `ast` from each file of the installed package's folders and must
point at a layer the importing layer may use:

    ir         snnc/ir          -> ir, snnc.errors
    ground     snnc/ (IR, artifact, errors, file I/O, targets, datasets)  -> ground
    analyses   analyses/        -> ground, analyses
    passes     passes/          -> ground, analyses, passes
    backends   backends/NAME    -> ground, analyses, the contract (snnc.backends), its own
    frontends  frontends/NAME   -> ground, analyses, passes, backends, its own frontend
    tools      tools/           -> everything
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FOLDERS = {"snnc": "snnc", "analyses": "snnc.analyses", "passes": "snnc.passes",
           "backends": "snnc.backends", "frontends": "snnc.frontends", "tools": "snnc.tools"}
GROUND_EXCLUDES = ("snnc.analyses", "snnc.passes", "snnc.backends", "snnc.frontends",
                   "snnc.tools")


def _module_name(path: Path) -> str:
    rel = path.relative_to(ROOT)
    parts = [FOLDERS[rel.parts[0]], *rel.parts[1:]]
    parts[-1] = parts[-1].removesuffix(".py")
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _sources() -> list[Path]:
    return sorted(p for folder in FOLDERS for p in (ROOT / folder).rglob("*.py"))


def _imports(path: Path) -> list[tuple[int, str]]:
    """(line, module) for every import of an snnc module in `path`."""
    tree = ast.parse(path.read_text(), str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            # `from snnc.x import y` may import the submodule y: count both.
            found.append((node.lineno, node.module))
            found += [(node.lineno, f"{node.module}.{a.name}") for a in node.names
                      if is_module(f"{node.module}.{a.name}")]
        elif isinstance(node, ast.ImportFrom) and node.level:
            raise AssertionError(f"{path}:{node.lineno}: relative import; the project "
                                 "imports its modules as snnc.* only")
    return [(line, m) for line, m in found if m == "snnc" or m.startswith("snnc.")]


def layer(module: str) -> tuple[str, str | None]:
    """(layer, sub-package) of an snnc module name."""
    parts = module.split(".")
    if len(parts) > 1 and parts[1] in ("backends", "frontends"):
        return parts[1], parts[2] if len(parts) > 2 else None
    if len(parts) > 1 and parts[1] in ("analyses", "passes", "tools"):
        return parts[1], None
    if len(parts) > 1 and parts[1] == "ir":
        return "ir", None
    return "ground", None


def allowed(importer: str, imported: str) -> bool:
    (a, a_sub), (b, b_sub) = layer(importer), layer(imported)
    if a == "tools":
        return True
    if a == "ir":
        return b == "ir" or imported in ("snnc.errors", "snnc")
    if a == "ground":
        return b in ("ground", "ir")
    if a == "analyses":
        return b in ("ground", "ir", "analyses")
    if a == "passes":
        return b in ("ground", "ir", "analyses", "passes")
    if a == "backends":
        # The package itself (the backend contract) or the importer's own backend.
        return b in ("ground", "ir", "analyses") or (b == "backends" and b_sub in (None, a_sub))
    if a == "frontends":
        return (b in ("ground", "ir", "analyses", "passes", "backends")
                or (b == "frontends" and b_sub in (None, a_sub)))
    raise AssertionError(a)


def is_module(module: str) -> bool:
    """Whether `module` names a module or package of ours (not an object inside one)."""
    parts = module.split(".")
    folder = {v: k for k, v in FOLDERS.items()}.get(".".join(parts[:2]))
    base, rest = (ROOT / folder, parts[2:]) if folder else (ROOT / "snnc", parts[1:])
    return (base.joinpath(*rest).with_suffix(".py").is_file() if rest else False) or \
        base.joinpath(*rest, "__init__.py").is_file()


@pytest.mark.parametrize("path", _sources(), ids=lambda p: str(p.relative_to(ROOT)))
def test_imports_follow_the_layers(path: Path) -> None:
    importer = _module_name(path)
    bad = [f"line {line}: {m}" for line, m in _imports(path)
           if not allowed(importer, m)]
    assert not bad, f"{importer} ({layer(importer)[0]}) may not import: {bad}"


def test_the_rules_refuse_what_they_should() -> None:
    """The rule table itself: each forbidden direction is refused."""
    assert not allowed("snnc.ir.graph", "snnc.artifact")
    assert not allowed("snnc.artifact", "snnc.passes.quantize")
    assert not allowed("snnc.artifact", "snnc.tools.check")
    assert not allowed("snnc.analyses.mapping", "snnc.passes.quantize")
    assert not allowed("snnc.passes.quantize", "snnc.backends.refsim")
    assert not allowed("snnc.backends.lava.lower", "snnc.backends.refsim.simulator")
    assert not allowed("snnc.backends.lava.lower", "snnc.frontends.torch")
    assert not allowed("snnc.frontends.torch.check", "snnc.tools.golden")
    assert allowed("snnc.backends.lava.lower", "snnc.analyses.timing")
    assert allowed("snnc.tools.cli", "snnc.frontends.torch")
