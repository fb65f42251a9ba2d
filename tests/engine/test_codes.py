"""The finding-code registry: the README's table, the emitting modules and the wire format."""

from __future__ import annotations

import ast
import json
import pickle
import re
from pathlib import Path

from watchdog.engine.codes import Code
from watchdog.engine.findings import Finding, Severity

ROOT = Path(__file__).resolve().parents[2]
# Calls whose first argument is a finding code (the constructors and the modules' helpers).
_EMITTERS = {"Finding", "ProbeError", "_problem", "finding"}


def _readme_rows() -> dict[str, tuple[str, str]]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("### Finding codes", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `([a-z0-9_]+)` \| ([a-z_]+) \| (.+?) \|$", section, re.M)
    assert rows, "the README has no table of finding codes"
    codes = [code for code, _, _ in rows]
    assert len(codes) == len(set(codes)), "a code is listed twice in the README"
    return {code: (severity, meaning) for code, severity, meaning in rows}


def test_readme_table_lists_every_code_and_no_other() -> None:
    """The README's table of codes is the registry: none missing, none stale, same wording."""
    readme = _readme_rows()
    registry = {c.value: (c.severity.value, c.meaning) for c in Code}
    assert sorted(set(registry) - set(readme)) == [], "codes missing from the README"
    assert sorted(set(readme) - set(registry)) == [], "README codes the registry lacks"
    assert readme == registry


def test_codes_are_unique_lowercase_and_explained() -> None:
    """Every code is a distinct snake_case word with a one-line meaning and a severity."""
    values = [c.value for c in Code]
    assert len(values) == len(set(values))
    for c in Code:
        assert re.fullmatch(r"[a-z][a-z0-9_]*", c.value), c
        assert c.meaning and "\n" not in c.meaning and "|" not in c.meaning, c
        assert isinstance(c.severity, Severity), c


def test_no_module_emits_a_literal_code() -> None:
    """Every Finding and ProbeError in the package names its code through the registry."""
    literal = []
    for path in sorted((ROOT / "watchdog").rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call) or not node.args:
                continue
            func = node.func
            name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
            first = node.args[0]
            if name in _EMITTERS and isinstance(first, ast.Constant | ast.JoinedStr):
                literal.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert literal == []


def test_a_code_is_its_string_on_the_wire() -> None:
    """JSON, f-strings and pickling (the worker pool) see the plain code string."""
    finding = Finding(Code.SIGNATURE_EXPIRED, Severity.STRICT_FAIL, "m")
    assert json.dumps({"code": finding.code}) == '{"code": "signature_expired"}'
    assert f"{finding.code}" == "signature_expired"
    assert pickle.loads(pickle.dumps(finding)).code is Code.SIGNATURE_EXPIRED  # noqa: S301 (ours)
    assert Code("lame") is Code.LAME
