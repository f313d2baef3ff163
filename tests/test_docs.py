"""The front door stays true: README's commands exist, and CI runs the README's test command."""

from __future__ import annotations

import re
import shlex

from click.testing import CliRunner

from mnist_idk.cli import main

from conftest import REPO

README = (REPO / "README.md").read_text("utf-8")
SHELL_BLOCKS = re.findall(r"```sh\n(.*?)```", README, re.S)


def shell_lines() -> list[str]:
    return [line.split("  #")[0].strip() for block in SHELL_BLOCKS for line in block.splitlines() if line.strip()]


def test_readme_has_exactly_two_commands_up_front_and_ci_runs_the_test_one():
    setup, tests = SHELL_BLOCKS[0].strip(), SHELL_BLOCKS[1].strip()
    assert setup == "pip install -e . && mnist-idk build"
    assert tests.endswith("pytest") and "pip install" in tests
    ci_script = (REPO / ".ci" / "run").read_text("utf-8")
    assert tests in ci_script.splitlines()


def test_every_command_the_readme_shows_exists_and_accepts_its_options():
    invocations = [shlex.split(part.strip()) for line in shell_lines() for part in line.split("&&")]
    ours = [words[1:] for words in invocations if words[0] == "mnist-idk"]
    assert len({words[0] for words in ours}) >= 8, ours
    runner = CliRunner()
    for words in ours:
        command = main.get_command(None, words[0])
        assert command is not None, f"README shows `mnist-idk {words[0]}`, which does not exist"
        path = words[:1]
        while hasattr(command, "get_command"):  # a group such as `review`: its subcommand comes next
            command = command.get_command(None, words[len(path)])
            path = words[:len(path) + 1]
            assert command is not None, f"README shows `mnist-idk {' '.join(path)}`, which does not exist"
        known = {opt for param in command.params for opt in getattr(param, "opts", [])}
        for word in words[len(path):]:
            if word.startswith("-"):
                assert word in known, f"README passes {word} to `mnist-idk {' '.join(path)}`, which has no such option"
        result = runner.invoke(main, [*path, "--help"])
        assert result.exit_code == 0 and "Usage:" in result.output


def test_readme_links_and_pictures_exist():
    for target in re.findall(r"\]\(([^)#:]+)\)", README):
        assert (REPO / target).exists(), target
