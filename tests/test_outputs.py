"""Output files: atomic replacement, no debris on failure, early checks, links to inputs."""

from __future__ import annotations

import errno
import os

import pytest

from deltaprop import outputs
from deltaprop.outputs import OutputError, check_writable, same_file, write_atomically


def test_a_failed_write_leaves_the_old_file_and_no_temporary_file(tmp_path):
    path = tmp_path / "out.csv"
    path.write_text("old")

    def half_then_fail(fh):
        fh.write(b"new but not all of it")
        raise KeyboardInterrupt  # Ctrl-C, or SIGTERM turned into one by the command

    with pytest.raises(KeyboardInterrupt):
        write_atomically(path, half_then_fail)
    assert path.read_text() == "old" and os.listdir(tmp_path) == ["out.csv"]


def test_a_full_disk_is_an_output_error_and_leaves_no_debris(tmp_path, monkeypatch):
    def no_space(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(outputs.os, "fsync", no_space)
    with pytest.raises(OutputError, match=r"out\.csv: cannot write: No space left on device"):
        write_atomically(tmp_path / "out.csv", lambda fh: fh.write(b"x" * 1000))
    assert os.listdir(tmp_path) == []


def test_a_symbolic_link_is_followed_and_kept(tmp_path):
    real, link = tmp_path / "real.csv", tmp_path / "link.csv"
    real.write_text("old")
    link.symlink_to(real)
    write_atomically(link, lambda fh: fh.write(b"new"))
    assert link.is_symlink() and real.read_text() == "new"


def test_special_files_and_folders_are_refused(tmp_path):
    with pytest.raises(OutputError, match="is a directory"):
        write_atomically(tmp_path, lambda fh: None)
    if os.path.exists(os.devnull) and os.name == "posix":
        with pytest.raises(OutputError, match="not a regular file"):
            check_writable(os.devnull)  # renaming over /dev/null would replace the device
    with pytest.raises(OutputError, match=r"folder .* does not exist"):
        check_writable(tmp_path / "no" / "out.csv")


def test_check_writable_finds_what_writing_would_find(tmp_path):
    with pytest.raises(OutputError, match="cannot write: File name too long"):
        check_writable(tmp_path / ("x" * 300))
    check_writable(tmp_path / "fine.csv")
    assert os.listdir(tmp_path) == []


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0,
                    reason="root writes into read-only folders")
def test_check_writable_refuses_a_read_only_folder(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        with pytest.raises(OutputError, match="Permission denied"):
            check_writable(folder / "out.csv")
    finally:
        folder.chmod(0o700)


def test_same_file_sees_through_links(tmp_path):
    a = tmp_path / "a.csv"
    a.write_text("x")
    (tmp_path / "sym.csv").symlink_to(a)
    os.link(a, tmp_path / "hard.csv")
    assert same_file(a, tmp_path / "sym.csv") and same_file(tmp_path / "hard.csv", a)
    assert same_file(a, tmp_path / "." / "a.csv")
    assert not same_file(a, tmp_path / "other.csv")
