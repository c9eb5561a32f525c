"""Files that are either old or new, never half-written, whenever the process dies."""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from pathlib import Path

from mkdocs_cfpurge.errors import WriteFailed


def _create_temp(path: Path) -> tuple[int, str]:
    """A new temp file beside `path`, created as `open(..., "w")` creates a file: mode 0666 less
    the umask (the kernel applies it). tempfile.mkstemp would make it 0600, and a marker copied
    to a web server running as another user would then answer 404. O_BINARY (Windows only)
    keeps the C runtime from writing every newline as CRLF."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    while True:
        tmp = os.path.join(path.parent, f".{path.name}.{secrets.token_hex(4)}.tmp")
        try:
            return os.open(tmp, flags, 0o666), tmp
        except FileExistsError:
            continue


def write_atomic(path: Path, data: bytes) -> None:
    """Write `data` to a temp file beside `path`, flush it to disk, then rename it over `path`.

    The file gets the mode a plain write would give it: an existing file's, else 0666 less the
    umask. Any failure (a full disk, no permission) is `WriteFailed` naming the file, which then
    still holds its old content.
    """
    try:
        _write(path, data)
    except OSError as exc:
        raise WriteFailed(path, exc) from None


def _keep_mode(fd: int, tmp: str, mode: int) -> None:
    # os.fchmod exists on Windows only from Python 3.13; chmod by name does the same there.
    if hasattr(os, "fchmod"):
        os.fchmod(fd, mode)
    else:
        os.chmod(tmp, mode)


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = _create_temp(path)
    try:
        with os.fdopen(fd, "wb") as handle:
            with contextlib.suppress(FileNotFoundError):
                # Rewriting a file in place keeps its mode: so does replacing it.
                _keep_mode(handle.fileno(), tmp, stat.S_IMODE(os.stat(path).st_mode))
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    # The rename itself must reach the disk too, or a crash could bring the old name back.
    # Windows cannot open a folder as a file (nor fsync one); NTFS journals the rename itself.
    if os.name == "nt":
        return
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
