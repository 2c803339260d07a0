"""Output files written safely: atomically, checked before the work, never over an input.

Every file deltaprop writes (model files, predictions, plots) goes through
:func:`write_atomically`: the content is written to a hidden temporary sibling
(``.NAME.XXXXXXXXXXXX.tmp`` in the target's folder), flushed to disk, and renamed over the
target, so readers see the old file or the complete new one, never a truncated one.  The
temporary file is removed on every failure Python sees (an error, a full disk, Ctrl-C, and
SIGTERM where the caller turns it into an exception, as the ``deltaprop`` command does); only
``kill -9`` or a power cut can leave one behind.

:func:`check_writable` makes the same temporary file and removes it, so a command can refuse
an output it could not write before spending minutes on training, and :func:`same_file` lets
it refuse an output that names one of its inputs (through symbolic or hard links too).

Examples
--------
>>> import os, tempfile
>>> from pathlib import Path
>>> from deltaprop.outputs import write_atomically
>>> path = Path(tempfile.mkdtemp()) / "out.txt"
>>> write_atomically(path, lambda fh: fh.write(b"hello"))
>>> path.read_text(), os.listdir(path.parent)
('hello', ['out.txt'])
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

PathLike = str | os.PathLike


class OutputError(ValueError):
    """An output file that cannot be written; the message names the file and the problem."""

    def __init__(self, path: PathLike, problem: str):
        self.path = os.fspath(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


def _destination(path: PathLike) -> Path:
    """The file that writing ``path`` replaces: symbolic links followed, checked to be a
    regular file or absent, in an existing folder."""
    given = Path(os.fspath(path))
    target = Path(os.path.realpath(given))
    mode = _mode(target)
    if mode is not None and stat.S_ISDIR(mode):
        raise OutputError(given, "is a directory; give a file name.")
    if mode is not None and not stat.S_ISREG(mode):
        raise OutputError(given, "is not a regular file (a device, pipe or socket); "
                                 "give the name of a file.")
    parent = _mode(target.parent)
    if parent is None or not stat.S_ISDIR(parent):
        raise OutputError(given, f"cannot write: folder {str(target.parent)!r} does not exist.")
    return target


def _mode(path: Path) -> int | None:
    """``st_mode`` of ``path``, or None where it cannot be read (absent, a name too long...);
    writing reports the precise problem then."""
    try:
        return path.stat().st_mode
    except (OSError, ValueError):
        return None


def _temporary_name(target: Path) -> Path:
    return target.parent / f".{target.name}.{secrets.token_hex(6)}.tmp"


def _create(tmp: Path) -> BinaryIO:
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    return os.fdopen(os.open(tmp, flags, 0o666), "wb")


def check_writable(path: PathLike) -> None:
    """Raise :class:`OutputError` unless ``path`` could be written now.

    Makes (and removes) the temporary file :func:`write_atomically` would make, so a
    read-only folder, a missing folder, a name too long or a full inode table are found
    before any work is done.
    """
    target = _destination(path)
    tmp = _temporary_name(target)
    try:
        _create(tmp).close()
    except OSError as exc:
        raise OutputError(path, f"cannot write: {exc.strerror or exc}.") from exc
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()


def write_atomically(path: PathLike, write: Callable[[BinaryIO], object]) -> None:
    """Write a file through ``write(fh)`` into a temporary sibling, then rename it over ``path``.

    Parameters
    ----------
    path : str or path-like
        The file to create or replace; a symbolic link is followed (the file it points to is
        replaced, the link kept).
    write : callable (binary file) -> object
        Writes the whole content; any exception it raises propagates after the temporary
        file is removed, and ``path`` is left as it was.

    Raises
    ------
    OutputError
        If the file cannot be written (missing folder, a directory, no permission, a full
        disk...).
    """
    target = _destination(path)
    tmp = _temporary_name(target)
    try:
        with _create(tmp) as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except OSError as exc:
        raise OutputError(path, f"cannot write: {exc.strerror or exc}.") from exc
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()


def same_file(a: PathLike, b: PathLike) -> bool:
    """Whether ``a`` and ``b`` name one file: equal after resolving symbolic links, or (both
    existing) the same inode, as hard links are."""
    if os.path.realpath(a) == os.path.realpath(b):
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False
