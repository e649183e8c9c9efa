"""Write-then-rename, so an interrupted run never leaves a half-written file behind, and the checks
that let a command refuse an unwritable destination before it does any work."""
from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path

from .errors import SrnlError


def cannot_write(path: Path, e: OSError) -> SrnlError:
    """The one way srnl says a file could not be written."""
    return SrnlError(f"{path}: cannot write ({e.strerror or e})")


@contextlib.contextmanager
def atomic_path(dest: str | os.PathLike):
    """Yield a temporary path beside `dest`; it replaces `dest` only if the block succeeds."""
    dest = Path(dest)
    tmp = dest.parent / f".{dest.name}.{secrets.token_hex(4)}.tmp{dest.suffix}"
    try:
        # os.open applies the umask (mkstemp would make every output private, mode 0600).
        os.close(os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))
    except OSError as e:
        raise cannot_write(dest, e) from None
    try:
        yield Path(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, dest)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def write_text(dest: str | os.PathLike, text: str) -> None:
    """A text file written atomically (UTF-8), its folder created if missing."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(dest) as tmp:
        tmp.write_text(text, encoding="utf-8")


def _nearest_existing(path: Path) -> Path:
    path = path.absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def _check_folder_writable(folder: Path, dest: Path) -> None:
    """`folder` exists or can be created (as far as permissions tell beforehand)."""
    existing = _nearest_existing(folder)
    if not existing.is_dir():
        raise SrnlError(f"{dest}: cannot write ({existing} is not a folder)")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise SrnlError(f"{dest}: cannot write (no permission in {existing})")


def check_writable_file(path: str | os.PathLike, overwrite: bool = True) -> None:
    """Refuse, before any work, a file that could not be written (or, without `overwrite`, that
    exists): a folder in its place, a file where a parent folder should be, no permission."""
    path = Path(path)
    if path.is_dir():
        raise SrnlError(f"{path}: is a folder, not a file")
    if path.exists() and not overwrite:
        raise SrnlError(f"{path}: exists", option="overwrite")
    _check_folder_writable(path.parent, path)


def check_writable_folder(path: str | os.PathLike) -> None:
    """Refuse, before any work, a folder that could not be created or written into."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise SrnlError(f"{path}: cannot write (not a folder)")
    _check_folder_writable(path, path)
