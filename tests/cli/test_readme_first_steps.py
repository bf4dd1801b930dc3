"""The README's first steps, replayed literally: offline with failed fetches, then ``--demo``.

Each command's output must be what the README shows (``tests/cli/first_steps.py`` says what is put in
one form first); ``scripts/readme-first-steps`` regenerates the README's transcript from such a run.
"""

from __future__ import annotations

import pytest

from tests.cli.first_steps import readme_transcript, run_first_steps, shown

pytestmark = pytest.mark.slow


def test_the_readme_first_steps_print_what_the_readme_shows(tmp_path):
    expected = readme_transcript()
    commands = [step.command for step in expected]
    assert commands[0].startswith("scripts/up") and "--demo" not in commands[0]
    assert any(command.startswith("scripts/up --demo") for command in commands)
    root = tmp_path / "papermail"
    steps, port = run_first_steps(root, commands)
    for want, got in zip(expected, steps, strict=True):
        assert (got.exit_code, shown(got, root, port)) == (want.exit_code, want.output), got.command
