"""Every Python sample of the documentation (docs/*.md, README.md) compiles and imports what
exists; those marked ``<!-- runnable -->`` are run. (``make docs`` builds the site itself.)"""

from __future__ import annotations

import ast
import importlib
import inspect
import re
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = sorted((ROOT / "docs").glob("*.md")) + [ROOT / "README.md"]
FENCE = re.compile(
    r"^(?P<indent>[ ]*)```python\n(?P<code>.*?)^(?P=indent)```",
    re.MULTILINE | re.DOTALL,
)
RUNNABLE = "<!-- runnable -->"


def _samples() -> list[tuple[str, str, bool]]:
    found = []
    for page in PAGES:
        text = page.read_text()
        for index, match in enumerate(FENCE.finditer(text)):
            before = text[: match.start()].rstrip().splitlines()[-1:] or [""]
            code = textwrap.dedent(match["code"])
            found.append((f"{page.name}#{index}", code, before[0].strip() == RUNNABLE))
    return found


SAMPLES = _samples()
IDS = [name for name, _, _ in SAMPLES]


def test_samples_are_found():
    assert len(SAMPLES) >= 10
    assert any(runnable for _, _, runnable in SAMPLES)


@pytest.mark.parametrize(("name", "code", "runnable"), SAMPLES, ids=IDS)
def test_sample_compiles_and_its_imports_exist(name, code, runnable):
    importlib.import_module(
        "django_conditional.versioned_views"
    )  # as any site that uses it has
    tree = ast.parse(code, filename=name)
    for node in ast.walk(tree):
        modules: list[tuple[str, str | None]]
        if isinstance(node, ast.Import):
            modules = [(alias.name, None) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            modules = [(node.module, alias.name) for alias in node.names]
        else:
            continue
        for module, attribute in modules:
            if module.split(".")[0] not in ("django_conditional", "django"):
                continue  # the reader's own app (blog, myapp...) or a third party
            imported = importlib.import_module(module)
            if attribute is not None and not hasattr(imported, attribute):
                importlib.import_module(f"{module}.{attribute}")  # a submodule
            if module == "django_conditional" and attribute is not None:
                # A public name of the root that a submodule of the same name shadows once it
                # is imported (``versioned``): samples import it from its module instead.
                assert not inspect.ismodule(getattr(imported, attribute)), attribute


@pytest.mark.parametrize(
    ("name", "code"),
    [(name, code) for name, code, runnable in SAMPLES if runnable],
    ids=[name for name, _, runnable in SAMPLES if runnable],
)
def test_runnable_sample_runs(name, code):
    from django_conditional.signals import decision_made, version_bumped

    namespace: dict[str, object] = {"__name__": "docs_sample"}
    try:
        exec(compile(code, name, "exec"), namespace)
    finally:  # receivers the sample connected stay in this test
        for value in namespace.values():
            if callable(value):
                decision_made.disconnect(value)
                version_bumped.disconnect(value)
