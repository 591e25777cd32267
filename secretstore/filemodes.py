"""What the node keeps private on disk: the modes it creates files with, and the check of
existing ones.

The node process runs with umask 077 (set once by its entry point, `restrict_umask`), so
everything it creates — the key database's directory and every file LevelDB writes in it
(CURRENT, LOCK, LOG, MANIFEST-*, *.log, *.ldb), whenever it writes them — is readable and
writable by its owner only. Directories created for private data are made 0700 explicitly as
well (`make_private_dir`), so their content stays out of others' reach even in a process
with a looser umask. Files holding secrets are written 0600 explicitly (keystore files, the
configs `secretstore cluster` writes).

An existing directory is never changed behind the operator's back: `exposure_warning` names
what group or others could read, write or enter, and the command that fixes it.
"""

from __future__ import annotations

import os
import shlex
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Final

#: The umask of the node process: no permission for group or others.
PRIVATE_UMASK: Final = 0o077
PRIVATE_DIR_MODE: Final = 0o700
PRIVATE_FILE_MODE: Final = 0o600
#: Mode bits that give group or others any access.
_SHARED_BITS: Final = stat.S_IRWXG | stat.S_IRWXO


def restrict_umask() -> int:
    """Keep every file and directory this process creates from now on private to its owner
    (the current umask plus 077). Returns the previous umask."""
    previous = os.umask(PRIVATE_UMASK)
    os.umask(previous | PRIVATE_UMASK)
    return previous


def make_private_dir(path: Path) -> None:
    """Create the directory `path` if it is missing (and its missing parents, with the usual
    mode), and give it mode 0700 whatever the umask. An existing directory is left alone."""
    if path.is_dir():
        return
    path.mkdir(mode=PRIVATE_DIR_MODE, parents=True, exist_ok=True)
    os.chmod(path, PRIVATE_DIR_MODE)


def open_private(path: Path, flags: int) -> int:
    """os.open of `path` with mode 0600 for a new file, also when an old one is reused."""
    descriptor = os.open(path, flags | os.O_CREAT, PRIVATE_FILE_MODE)
    try:
        os.fchmod(descriptor, PRIVATE_FILE_MODE)
    except BaseException:
        os.close(descriptor)
        raise
    return descriptor


@dataclass(frozen=True, slots=True)
class Exposed:
    """A file or directory that group or others may access, and its permission bits."""

    path: Path
    mode: int

    def __str__(self) -> str:
        return f"{self.path} (mode {self.mode:04o})"


def exposed_entries(root: Path) -> list[Exposed]:
    """`root` and every file and directory below it that group or others may read, write or
    enter (symbolic links are not followed); [] when `root` does not exist."""
    found: list[Exposed] = []
    entries = [root, *sorted(root.rglob("*"))] if root.is_dir() else [root]
    for entry in entries:
        try:
            status = entry.lstat()
        except FileNotFoundError:
            continue
        mode = stat.S_IMODE(status.st_mode)
        if not stat.S_ISLNK(status.st_mode) and mode & _SHARED_BITS:
            found.append(Exposed(entry, mode))
    return found


def exposure_warning(root: Path, what: str) -> str | None:
    """One line for the log when group or others may access `root` or anything in it: the
    first such path with its mode, how many more there are, and how to fix it. None when all
    of it is private (or it does not exist)."""
    exposed = exposed_entries(root)
    if not exposed:
        return None
    more = f" and {len(exposed) - 1} more" if len(exposed) > 1 else ""
    fix = f"chmod -R go-rwx {shlex.quote(str(root))}"
    return (
        f"{what} {root} is readable or writable by group or others: {exposed[0]}{more}; "
        f"make it private to this node's user with: {fix}"
    )
