"""The pre-commit hooks run the same static checks as CI, so a commit that passes them passes CI's."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_pre_commit_runs_the_commands_ci_runs() -> None:
    ci = re.findall(r"^\.venv/bin/((?:ruff|mypy)\b.*)$", (REPO / ".ci/run").read_text(), re.M)
    config = (REPO / ".pre-commit-config.yaml").read_text()
    hooks = re.findall(r"^\s+entry: (.+)$", config, re.M)
    assert ci == hooks == ["ruff format --check daemon tests bench", "ruff check daemon tests bench", "mypy"]
    assert config.count("language: system") == config.count("pass_filenames: false") == len(hooks)
