"""The command checked before anything of a run is made (no run directory, no slice, no UID):
it exists and the run's user may execute it. A bare name is looked up as execvp does, over
the workload's PATH: a directory that is missing or that the user cannot search is skipped
(EACCES there means "search on", not "fail")."""

from __future__ import annotations

import os
import pwd
import stat
from dataclasses import dataclass
from pathlib import Path

from sandbox.errors import HarnessError


class PreflightError(HarnessError):
    """The command cannot run (one line: why)."""


@dataclass(frozen=True)
class Credentials:
    """Whom to check for: ``uid`` None is a fresh UID of the run's own (it owns nothing and
    is in no group: only the "other" permission bits apply)."""

    uid: int | None
    groups: frozenset[int] = frozenset()

    @classmethod
    def for_run(cls, user: str | None) -> Credentials:
        """``--user NAME`` with its groups, or the run's own fresh UID (None)."""
        if user is None:
            return cls(None)
        try:
            account = pwd.getpwnam(user)
        except KeyError as exc:
            raise PreflightError(f"unknown user {user!r}") from exc
        return cls(account.pw_uid, frozenset(os.getgrouplist(user, account.pw_gid)))

    def may(self, st: os.stat_result, bits: int) -> bool:
        """Whether these credentials have ``bits`` (x=1, r=4) on a file with ``st``."""
        if self.uid == 0:
            return bits != 1 or stat.S_ISDIR(st.st_mode) or bool(st.st_mode & 0o111)
        shift = 6 if st.st_uid == self.uid else 3 if st.st_gid in self.groups else 0
        return (st.st_mode >> shift) & bits == bits


def _searchable(directory: Path, who: Credentials) -> bool:
    """Whether ``who`` can reach files in ``directory`` (every directory on the way)."""
    try:
        return all(who.may(d.stat(), 1) for d in (*reversed(directory.parents), directory))
    except OSError:
        return False


def _executable(path: Path, who: Credentials) -> str | None:
    """Why ``who`` cannot execute ``path`` (None when it can)."""
    try:
        st = path.stat()
    except FileNotFoundError:
        return "not found"
    except OSError as exc:
        return exc.strerror or str(exc)
    if stat.S_ISDIR(st.st_mode):
        return "is a directory"
    if not who.may(st, 1):
        return "is not executable by the run's user"
    return None


def resolve(command: str, search_path: str, cwd: Path, who: Credentials) -> Path:
    """The file ``command`` runs, as execvp finds it for ``who``; raises PreflightError."""
    if "/" in command:
        path = cwd / command
        if why := _executable(path, who):
            raise PreflightError(f"command {command}: {why}")
        return path
    refused = None
    for entry in search_path.split(os.pathsep):
        directory = cwd / (entry or ".")
        if not _searchable(directory, who):
            continue
        candidate = directory / command
        why = _executable(candidate, who)
        if why is None:
            return candidate
        if why != "not found":
            refused = refused or f"{candidate} {why}"
    raise PreflightError(f"command {command}: " + (refused or f"not found on PATH {search_path}"))


def check_command(argv: list[str], user: str | None, search_path: str | None = None,
                  cwd: Path | None = None) -> Path:
    """Check a run's command before anything is made (``search_path``: the workload's PATH,
    default the harness's; ``cwd``: where it starts, default here); the file that will run."""
    if not argv or not argv[0]:
        raise PreflightError("no command given")
    return resolve(argv[0], search_path or os.environ.get("PATH") or os.defpath,
                   cwd or Path.cwd(), Credentials.for_run(user))


__all__ = ["Credentials", "PreflightError", "check_command", "resolve"]
