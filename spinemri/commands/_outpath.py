"""The output path of a command, checked before anything is read: a usage error, never a traceback.

``--out a/b`` where ``a`` is a file, ``--out`` naming a file where a folder is written (or a folder
where a file is written), or a parent folder that cannot be written ended in a NotADirectoryError,
FileExistsError or IsADirectoryError traceback after the work was done (issue 17).
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["check_output_path"]


def check_output_path(path: str | os.PathLike[str], option: str, *, folder: bool) -> Path:
    """Refuse an output path that cannot be written, before any input is read.

    Parameters
    ----------
    path : path-like
        The folder or file the command will write.
    option : str
        How the user named it (``"--out"``, ``"OUT_DIR"``), for the message.
    folder : bool
        True when the command writes a folder there, False when it writes a file.

    Returns
    -------
    Path
        ``path``, unchanged.

    Raises
    ------
    spinemri.cli.UsageError
        ``path`` exists as the other kind (a file for a folder, a folder for a file); an existing
        ancestor of it is a file; or the nearest existing ancestor is not writable. Exit 2.
    """
    from ..cli import UsageError

    p = Path(path)
    kind = "folder" if folder else "file"
    if p.exists():
        if folder and not p.is_dir():
            raise UsageError(f"{option} {p}: is a file, not a folder; choose a folder")
        if not folder and p.is_dir():
            raise UsageError(f"{option} {p}: is a folder; {option} names the file to write")
        return p
    for parent in p.absolute().parents:
        if not parent.exists() and not parent.is_symlink():
            continue
        if not parent.is_dir():
            raise UsageError(
                f"{option} {p}: {parent} is a file, so {p} cannot be created; choose another {kind}"
            )
        if not os.access(parent, os.W_OK | os.X_OK):
            raise UsageError(
                f"{option} {p}: cannot be created in {parent} (not writable: read-only file system or no "
                f"permission); choose another {kind}"
            )
        break
    return p
