"""The docs match the product: every ``sandbox`` command in README.md and docs/*.md names a
real subcommand and only its real options (read from the CLI's own command tree), every
dependency is in docs/dependencies.md, and the "From Python" example runs as written."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import typer.core
import typer.main

from sandbox.cli import app

REPO = Path(__file__).resolve().parent.parent
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
#: Options the docs may name before the CLI has them: being added in parallel (issue 26).
#: Remove an entry once the option exists (test_the_allow_list_is_not_stale says when).
PENDING: dict[tuple[str, ...], set[str]] = {}

_FENCE = re.compile(r"^```[^\n]*\n(.*?)^```", re.MULTILINE | re.DOTALL)
_INLINE = re.compile(r"`([^`\n]+)`")
#: ``sandbox ...`` at the start of a command or after ``=`` (ExecStart=), by any path
#: (.venv/bin/, /usr/local/bin/, an image's name), after sudo or not.
_START = re.compile(r"(?:^|[\s=])(?:sudo\s+)?(?:[\w.-]*/)*sandbox\s+(.*)$")
_CHAIN = re.compile(r"&&|\|\||\||;")
_OPTION = re.compile(r"(?<![\w/.-])(--?[a-zA-Z][\w-]*)")


def _command_tree() -> dict[tuple[str, ...], tuple[set[str], set[str]]]:
    """(subcommand path) -> (its option names, its subcommands), from the real CLI."""
    tree: dict[tuple[str, ...], tuple[set[str], set[str]]] = {}

    def walk(path: tuple[str, ...], command: Any) -> None:
        options = {"--help"} | {name for p in command.params
                                if isinstance(p, typer.core.TyperOption)
                                for name in (*p.opts, *p.secondary_opts)}
        children = command.commands if isinstance(command, typer.core.TyperGroup) else {}
        tree[path] = (options, set(children))
        for name, child in children.items():
            walk((*path, name), child)

    walk((), typer.main.get_command(app))
    return tree


TREE = _command_tree()


def _commands(text: str) -> list[tuple[str, bool]]:
    """(what follows ``sandbox``, whether it must name a subcommand) for every sandbox command
    in ``text``: in code blocks (chains split, comments dropped, continuations joined; a
    command that starts its line or an ``X=`` must name a real subcommand) and code spans."""
    found = []
    for block in _FENCE.findall(text):
        for line in block.replace("\\\n", " ").splitlines():
            line = re.sub(r"\s#.*$", "", line)
            found += [(m.group(1), m.start() == 0 or part.strip()[m.start()] == "=")
                      for part in _CHAIN.split(line) if (m := _START.search(part.strip()))]
    for span in _INLINE.findall(_FENCE.sub("", text)):
        found += [(m.group(1), False) for part in _CHAIN.split(span)
                  if (m := _START.search(part.strip()))]
    return found


def _problems(rest: str, strict: bool) -> list[str]:
    """What is wrong with ``sandbox <rest>``: an unknown subcommand, options it lacks."""
    words = rest.split()
    path: tuple[str, ...] = ()
    while words and words[0] in TREE[path][1]:
        path = (*path, words.pop(0))
    if not path and words and re.fullmatch(r"[a-z][a-z-]*", words[0]):
        return [f"no subcommand {words[0]!r}"] if strict else []  # prose, a placeholder
    if "--" in words:
        words = words[:words.index("--")]  # the workload's own arguments
    options, _ = TREE[path]
    allowed = options | PENDING.get(path, set())
    used = {m.split("=")[0] for word in words for m in _OPTION.findall(word)}
    return [f"{' '.join(path) or 'sandbox'} has no {o}" for o in sorted(used - allowed)]


def test_every_doc_command_names_real_subcommands_and_options() -> None:
    checked, wrong = 0, []
    for doc in DOCS:
        for rest, strict in _commands(doc.read_text()):
            checked += 1
            wrong += [f"{doc.relative_to(REPO)}: sandbox {rest}: {p}"
                      for p in _problems(rest, strict)]
    assert checked > 20
    assert not wrong, "\n".join(wrong)


def test_the_check_catches_drift() -> None:
    assert _problems("run --scenario quick --no-such-flag", True) == ["run has no --no-such-flag"]
    assert _problems("frobnicate --x", True) == ["no subcommand 'frobnicate'"]
    assert _problems("runs prune --keep 3 -- --not-ours", True) == []
    assert _problems("report RUN_DIR [--budget B] [-o DIR|-]", False) == []


def test_the_allow_list_is_not_stale() -> None:
    arrived = {path: names & TREE[path][0] for path, names in PENDING.items()}
    assert not any(arrived.values()), f"these options exist now: drop them from PENDING: {arrived}"


def _apt_packages(script: Path) -> set[str]:
    text = script.read_text().replace("\\\n", " ")
    names: set[str] = set()
    for line in text.splitlines():
        if m := re.search(r"apt-ensure\.sh((?:\s+[\w.+-]+)+)", line):
            names |= {w for w in m.group(1).split() if not w.startswith("-")}
    return names


def test_every_dependency_is_in_dependencies_md() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    requirements = [*project["project"]["dependencies"], *project["build-system"]["requires"],
                    *(r for extra in project["project"]["optional-dependencies"].values()
                      for r in extra)]
    python = {re.split(r"[<>=!~\[; ]", r, maxsplit=1)[0].lower() for r in requirements}
    debian = _apt_packages(REPO / "scripts/setup.sh") | _apt_packages(REPO / "scripts/test.sh")
    assert {"psutil", "setuptools", "mypy"} <= python and {"chromium", "sudo"} <= debian
    listed = {name.strip().split(" ")[0].lower()
              for row in re.findall(r"^\| ([^|]+) \|", (REPO / "docs/dependencies.md").read_text(),
                                    re.MULTILINE)
              for name in row.split(",")}
    assert not python - listed, f"Python packages docs/dependencies.md lacks: {python - listed}"
    assert not debian - listed, f"Debian packages docs/dependencies.md lacks: {debian - listed}"


def _from_python() -> str:
    text = (REPO / "docs/getting-started.md").read_text()
    section = text.split("## From Python", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.DOTALL).group(1)


def test_the_from_python_example_runs_as_written(needs_cgroups, tmp_path: Path) -> None:
    """A real run of the built-in site, as short as the example makes it."""
    done = subprocess.run([sys.executable, "-c", _from_python()], cwd=tmp_path,
                          capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    said = re.search(r"print\(.*\)\s+#\s*(.+)$", _from_python(), re.MULTILINE).group(1)
    assert done.stdout.strip() == said, done.stdout  # what the comment says it prints
    assert (tmp_path / "runs").is_dir()

