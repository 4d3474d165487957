"""Sessions: tests, lint, typecheck (the default set), and bench for the benchmark report."""

from __future__ import annotations

import nox

nox.options.sessions = ["tests", "lint", "typecheck"]
nox.options.reuse_existing_virtualenvs = True
nox.options.default_venv_backend = "venv"

PYPROJECT = nox.project.load_toml("pyproject.toml")


def groups(*names: str) -> list[str]:
    return [req for name in names for req in nox.project.dependency_groups(PYPROJECT, name)]


@nox.session
def tests(session: nox.Session) -> None:
    """The test suite against the installed package (not the source tree)."""
    session.install(".[web]", *groups("test"))
    session.run("pytest", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    session.install(*groups("lint"))
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session
def typecheck(session: nox.Session) -> None:
    session.install("-e", ".[web]", *groups("test", "lint", "bench"))
    session.run("mypy")


@nox.session
def bench(session: nox.Session) -> None:
    """Every benchmark scenario, the README table and the plot (see benchmarks/)."""
    session.install(".", *groups("bench"))
    # two runs per target, the best counting: other load on a small machine hits one run
    session.run("python", "-m", "benchmarks", "all", "--report", "--repeat", "2", *session.posargs)


@nox.session
def confusables(session: nox.Session) -> None:
    """Regenerate trio_chat/confusables.json from ICU's TR39 data (PyICU, ICU bundled)."""
    session.install("icukit-pyicu")
    session.run("python", "-m", "trio_chat.confusables", env={"PYTHONPATH": "."})
