"""Private files: the umask of the node, private directories and files, the exposure check."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from secretstore.filemodes import (
    PRIVATE_UMASK,
    exposed_entries,
    exposure_warning,
    make_private_dir,
    open_private,
    restrict_umask,
)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


@pytest.fixture
def open_umask() -> Iterator[None]:
    """Run with umask 000, the loosest a caller could have; restored afterwards."""
    previous = os.umask(0)
    try:
        yield
    finally:
        os.umask(previous)


def test_restrict_umask_adds_077_to_the_current_umask() -> None:
    previous = os.umask(0o002)
    try:
        assert restrict_umask() == 0o002
        assert os.umask(0o022) == 0o002 | PRIVATE_UMASK
        assert restrict_umask() == 0o022
        assert os.umask(0o022) == 0o077
        os.umask(0o027 | 0o100)
        restrict_umask()
        assert os.umask(0o022) == 0o177  # a stricter umask stays as strict
    finally:
        os.umask(previous)


def test_a_new_private_directory_is_0700_whatever_the_umask(
    tmp_path: Path, open_umask: None
) -> None:
    target = tmp_path / "a" / "db"
    make_private_dir(target)
    assert mode(target) == 0o700


def test_an_existing_directory_is_left_as_it_is(tmp_path: Path) -> None:
    target = tmp_path / "db"
    target.mkdir()
    target.chmod(0o755)
    make_private_dir(target)
    assert mode(target) == 0o755


def test_open_private_makes_even_a_reused_file_0600(tmp_path: Path, open_umask: None) -> None:
    fresh = tmp_path / "fresh"
    os.close(open_private(fresh, os.O_WRONLY))
    assert mode(fresh) == 0o600
    stale = tmp_path / "stale"
    stale.write_text("old")
    stale.chmod(0o644)
    descriptor = open_private(stale, os.O_WRONLY | os.O_APPEND)
    with os.fdopen(descriptor, "w") as handle:
        handle.write("new")
    assert mode(stale) == 0o600
    assert stale.read_text() == "oldnew"


def private_tree(root: Path) -> Path:
    root.mkdir(mode=0o700)
    root.chmod(0o700)
    for name in ("CURRENT", "LOG", "000005.ldb"):
        (root / name).write_text("x")
        (root / name).chmod(0o600)
    return root


def test_a_private_tree_gives_no_warning(tmp_path: Path) -> None:
    root = private_tree(tmp_path / "db")
    assert exposed_entries(root) == []
    assert exposure_warning(root, "the key database") is None
    assert exposure_warning(tmp_path / "missing", "the key database") is None


@pytest.mark.parametrize("bits", [0o040, 0o020, 0o004, 0o002, 0o010, 0o001])
def test_any_group_or_other_bit_of_a_file_is_reported(tmp_path: Path, bits: int) -> None:
    root = private_tree(tmp_path / "db")
    (root / "LOG").chmod(0o600 | bits)
    (found,) = exposed_entries(root)
    assert found.path == root / "LOG" and found.mode == 0o600 | bits


def test_the_warning_is_one_line_naming_the_path_its_mode_and_the_fix(tmp_path: Path) -> None:
    root = private_tree(tmp_path / "my db")
    root.chmod(0o755)
    for name in ("CURRENT", "LOG"):
        (root / name).chmod(0o644)
    warning = exposure_warning(root, "the key database")
    assert warning is not None and "\n" not in warning
    assert f"the key database {root} is readable or writable by group or others" in warning
    assert f"{root} (mode 0755) and 2 more" in warning
    assert f"chmod -R go-rwx '{root}'" in warning


def test_a_single_file_can_be_checked(tmp_path: Path) -> None:
    config = tmp_path / "node.toml"
    config.write_text("x")
    config.chmod(0o644)
    warning = exposure_warning(config, "the config file")
    assert warning is not None and "(mode 0644)" in warning and "more" not in warning
    config.chmod(0o600)
    assert exposure_warning(config, "the config file") is None


def test_symbolic_links_are_not_followed(tmp_path: Path) -> None:
    root = private_tree(tmp_path / "db")
    outside = tmp_path / "outside"
    outside.write_text("x")
    outside.chmod(0o644)
    (root / "link").symlink_to(outside)
    assert exposed_entries(root) == []
