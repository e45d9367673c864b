"""The package imports only what a plain install brings (issue 19).

A library imported by ``aggregator/`` must be one of its runtime dependencies, or installed by
one of them: a test-only dependency (httpx, pytest ...) imported by the package would pass every
test here and fail on a user's machine, where `pip install aggregator` does not bring it.
"""

from __future__ import annotations

import ast
import re
import sys
from importlib import metadata
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "aggregator"


def _imported_libraries() -> dict[str, set[str]]:
    """Top-level names of third-party modules imported anywhere in the package -> files."""
    found: dict[str, set[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top != "aggregator" and top not in sys.stdlib_module_names:
                    found.setdefault(top, set()).add(str(path.relative_to(PACKAGE)))
    return found


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _runtime_closure() -> set[str]:
    """Every distribution a plain install of aggregator brings (no extras), by walking the
    runtime requirements of the installed distributions."""
    seen: set[str] = set()
    todo = ["aggregator"]
    while todo:
        name = _normal(todo.pop())
        if name in seen:
            continue
        seen.add(name)
        try:
            requires = metadata.requires(name) or []
        except metadata.PackageNotFoundError:
            continue  # a platform-only requirement not installed here (uvloop on Windows)
        for requirement in requires:
            if "extra ==" in requirement.replace('"', "'").replace("extra==", "extra =="):
                continue
            todo.append(re.split(r"[\s;<>=!~\[(]", requirement, maxsplit=1)[0])
    return seen


def test_every_imported_library_comes_with_a_plain_install() -> None:
    distributions = metadata.packages_distributions()
    closure = _runtime_closure()
    missing = {
        library: sorted(files)
        for library, files in _imported_libraries().items()
        if not any(_normal(d) in closure for d in distributions.get(library, [library]))
    }
    assert not missing, f"imported but not a runtime dependency: {missing}"


def test_the_check_sees_a_test_only_dependency() -> None:
    """The closure leaves out the test extras, so importing one would be caught."""
    closure = _runtime_closure()
    assert "aiohttp" in closure and "feedparser" in closure
    assert "pytest" not in closure and "hypothesis" not in closure
