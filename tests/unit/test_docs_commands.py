"""Every `mall-notify` command the README and the docs tell a person to type exists, with the
options they give it (its --help lists them), and every `make` target they name is in the Makefile.
The integration tests and `make demo` run the commands themselves; this catches a doc that drifts."""

from __future__ import annotations

import re
import shlex
from functools import cache

import pytest
from typer.testing import CliRunner

from streams.cli import app
from tests.factories import ROOT

DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"```(?:sh|bash|console)\n(.*?)```", re.DOTALL)


def _invocations() -> list[tuple[str, list[str]]]:
    """(doc, words) of every mall-notify command in a fenced block, as the shell would split it
    (a command substituted with ``$(...)`` too)."""
    found = []
    for doc in DOCS:
        for block in FENCE.findall(doc.read_text()):
            for line in block.replace("\\\n", " ").splitlines():
                unwrapped = line.replace('"$(', " ").replace("$(", " ").replace(')"', " ")
                lexer = shlex.shlex(unwrapped, posix=True, punctuation_chars=True)
                lexer.whitespace_split = True
                words = list(lexer)
                for start in [i for i, word in enumerate(words) if word == "mall-notify"]:
                    command = []
                    for word in words[start + 1 :]:
                        if word and set(word) <= set("|;&()<>"):
                            break
                        command.append(word)
                    found.append((doc.name, command))
    return found


@cache
def _help(path: tuple[str, ...]) -> str:
    result = CliRunner().invoke(app, [*path, "--help"], env={"COLUMNS": "200"}, terminal_width=200)
    assert result.exit_code == 0, f"mall-notify {' '.join(path)} --help: {result.output[-300:]}"
    return result.output


def _command_path(words: list[str]) -> tuple[str, ...]:
    """The subcommand words (before the first option or argument that is not a subcommand)."""
    path: list[str] = []
    for word in words:
        if word.startswith("-"):
            break
        if re.fullmatch(r"[a-z][a-z-]*", word) and f" {word} " in _help(tuple(path)).replace("│", " "):
            path.append(word)
        else:
            break
    return tuple(path)


INVOCATIONS = _invocations()


def test_the_docs_show_commands() -> None:
    assert len(INVOCATIONS) >= 20


@pytest.mark.parametrize(("doc", "words"), INVOCATIONS, ids=[" ".join(w)[:60] for _, w in INVOCATIONS])
def test_a_documented_command_and_its_options_exist(doc: str, words: list[str]) -> None:
    path = _command_path(words)
    assert path, f"{doc}: `mall-notify {' '.join(words)}` names no command"
    text = _help(path)
    for option in (word.split("=")[0] for word in words if word.startswith("--")):
        assert option in text, f"{doc}: `mall-notify {' '.join(path)}` has no option {option}"


def test_every_make_target_the_docs_name_exists() -> None:
    targets = set(re.findall(r"^([a-z][a-z-]*):", (ROOT / "Makefile").read_text(), re.MULTILINE))
    named = {name for doc in DOCS for name in re.findall(r"`make ([a-z-]+)`", doc.read_text())}
    assert named, "the docs name make targets"
    assert named <= targets, f"make targets the docs name that do not exist: {sorted(named - targets)}"
