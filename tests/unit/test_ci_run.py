"""CI runs the README's test command with the derandomized Hypothesis profile, and a developer's
run keeps random exploration: the profile follows HYPOTHESIS_PROFILE (tests/conftest.py)."""

from __future__ import annotations

import os
import re
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

REPO = Path(__file__).resolve().parents[2]


def test_ci_runs_the_readmes_test_command_with_the_ci_profile() -> None:
    ci = (REPO / ".ci/run").read_text()
    readme = (REPO / "README.md").read_text()
    command = re.search(r"&& (\.venv/bin/pytest)\n", readme)
    assert command is not None
    last = [line for line in ci.splitlines() if line.strip() and not line.startswith("#")][-1]
    assert last == command.group(1)
    assert re.search(r"^export HYPOTHESIS_PROFILE=ci$", ci, re.M)


def test_the_loaded_profile_follows_the_environment() -> None:
    in_ci = os.environ.get("HYPOTHESIS_PROFILE") == "ci"
    assert settings.default.derandomize is in_ci
    ci = settings.get_profile("ci")
    assert ci.derandomize and ci.print_blob and ci.deadline is None


def test_the_ci_profile_draws_the_same_examples_every_run() -> None:
    def draws() -> list[int]:
        seen: list[int] = []

        @settings(settings.get_profile("ci"), max_examples=20)
        @given(st.integers())
        def probe(n: int) -> None:
            seen.append(n)

        probe()
        return seen

    first = draws()
    assert len(first) == 20 and first == draws()
