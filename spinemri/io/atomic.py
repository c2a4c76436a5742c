"""Atomic file writes: write to a temporary name in the same folder, then rename.

A reader never sees a half-written file, and a crash leaves at most a
``.*.tmp`` file behind (never a truncated output under its real name).
"""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

from ..errors import OutputError

__all__ = [
    "atomic_path",
    "describe_os_error",
    "write_bytes_atomic",
    "write_text_atomic",
    "write_with_atomic",
    "writing",
]


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it onto ``path`` on success.

    The temporary name keeps the final suffixes (``.nii.gz``, ``.csv``) so that
    writers choosing a format by extension behave the same. On an exception the
    temporary file is removed and ``path`` is left untouched.

    Parameters
    ----------
    path : str or path-like
        Final file name; its parent folder is created when missing.

    Yields
    ------
    Path
        An empty temporary file ``.<stem>.XXXX.tmp<suffixes>`` in ``path``'s
        folder, to be written by the caller; on a normal exit it gets the
        permissions a plain ``open()`` would give (``0o666 & ~umask``) and is
        renamed onto ``path`` (``os.replace``).
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    suffix = "".join(target.suffixes) or ".tmp"
    tmp: Path | None = None
    try:
        # a Ctrl-C between the temporary file's creation and the moment its name is known here left
        # it behind (seen in tests/test_clean_exits.py under load): the signal waits until then
        deferred = _defer_interrupts()
        try:
            # the stem is cut so that a long final name (up to the 255-byte limit) still has a
            # temporary name
            fd, tmp_name = tempfile.mkstemp(
                prefix=f".{target.stem[:40]}.", suffix=".tmp" + suffix[-40:], dir=target.parent
            )
            tmp = Path(tmp_name)
            os.close(fd)
        finally:
            _restore_interrupts(deferred)  # a Ctrl-C that came meanwhile is raised here
        yield tmp
        # mkstemp creates 0600 files: give the result the permissions a plain open() would
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, target)
    except BaseException:
        if tmp is not None:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
        raise


#: The signals held back while a temporary file is created (Ctrl-C, and the TERM a scheduler sends).
_DEFERRED_SIGNALS = {signal.SIGINT, signal.SIGTERM}


def _defer_interrupts() -> set[int | signal.Signals] | None:
    """Hold back Ctrl-C and TERM in this thread (POSIX); the previous mask, None where not possible."""
    if not hasattr(signal, "pthread_sigmask"):
        return None
    return signal.pthread_sigmask(signal.SIG_BLOCK, _DEFERRED_SIGNALS)


def _restore_interrupts(previous: set[int | signal.Signals] | None) -> None:
    if previous is not None:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def write_bytes_atomic(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically; return the final path.

    Parameters
    ----------
    path : str or path-like
        Output file; its folder is created, an existing file is replaced.
    data : bytes
        The complete file content.

    Returns
    -------
    Path
        ``Path(path)``, which now holds exactly ``data``.
    """
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def write_text_atomic(path: str | os.PathLike[str], text: str, encoding: str = "utf-8") -> Path:
    """Write ``text`` to ``path`` atomically; return the final path.

    Parameters
    ----------
    path : str or path-like
        Output file; its folder is created, an existing file is replaced.
    text : str
        The complete file content (written as is: no newline translation).
    encoding : str, default "utf-8"
        Codec used to encode ``text`` to bytes.

    Returns
    -------
    Path
        ``Path(path)``, which now holds ``text.encode(encoding)``.
    """
    return write_bytes_atomic(path, text.encode(encoding))


def write_with_atomic(path: str | os.PathLike[str], writer: Callable[[Path], object]) -> Path:
    """Call ``writer(tmp_path)`` and rename the result onto ``path``.

    Parameters
    ----------
    path : str or path-like
        Final file name; its folder is created, an existing file is replaced.
    writer : callable of (Path) -> object
        Writes the whole file to the temporary path it is given (which keeps
        ``path``'s suffixes); its return value is ignored. When it raises, the
        temporary file is removed, ``path`` is untouched and the error propagates.

    Returns
    -------
    Path
        ``Path(path)``, now holding what ``writer`` wrote.
    """
    with atomic_path(path) as tmp:
        writer(tmp)
    return Path(path)


#: errno -> what the user reads; ENOSPC and EDQUOT also get the hint to free space and rerun.
_WRITE_ERRNOS = {
    errno.ENOSPC: "no space left on device",
    errno.EDQUOT: "disk quota exceeded",
    errno.EROFS: "read-only file system",
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied",
    errno.EFBIG: "file too large for the file system",
}


def describe_os_error(exc: OSError) -> str:
    """A short lower-case description of an OSError raised while writing.

    Parameters
    ----------
    exc : OSError
        The error.

    Returns
    -------
    str
        ``"no space left on device"`` for ENOSPC, ``"disk quota exceeded"`` for EDQUOT, ...,
        else the error's strerror (or its text).
    """
    if exc.errno in _WRITE_ERRNOS:
        return _WRITE_ERRNOS[exc.errno]
    return str(exc.strerror or exc or type(exc).__name__)


@contextlib.contextmanager
def writing(path: str | os.PathLike[str]) -> Iterator[None]:
    """Turn an OSError raised inside the block into an :class:`~spinemri.errors.OutputError` naming ``path``.

    Parameters
    ----------
    path : str or path-like
        The file (or folder) the block writes.

    Yields
    ------
    None
        While the block runs.

    Raises
    ------
    OutputError
        ``"no space left on device while writing PATH; free some space ... and rerun"`` (an
        OutputError raised inside is passed on unchanged).
    """
    try:
        yield
    except OutputError:
        raise
    except OSError as exc:
        hint = (
            "; free some space (or write to another folder) and rerun (spinemri run keeps and skips "
            "its finished cases)"
            if exc.errno in (errno.ENOSPC, errno.EDQUOT)
            else ""
        )
        err = OutputError(f"{describe_os_error(exc)} while writing {path}{hint}")
        err.errno = exc.errno  # one argument, so str() is the message alone; except OSError still works
        raise err from exc
