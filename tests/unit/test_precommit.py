"""The pre-commit hooks run the same static checks as CI, so a commit that passes them passes CI's."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_pre_commit_runs_the_checks_ci_runs() -> None:
    ci = re.findall(
        r"^\.venv/bin/((?:ruff|mypy)\b[^\n]*?)(?: daemon tests bench)?$", (REPO / ".ci/run").read_text(), re.M
    )
    hooks = re.findall(r"^\s+entry: (.+)$", (REPO / ".pre-commit-config.yaml").read_text(), re.M)
    assert sorted(ci) == sorted(hooks) == ["mypy", "ruff check", "ruff format --check"]
    assert "language: system" in (REPO / ".pre-commit-config.yaml").read_text()  # local tools, no download
