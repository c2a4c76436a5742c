"""Which files a reader opens: data files named by detached headers, and every input of a case.

A detached NRRD header (``.nhdr``, or a ``.nrrd`` with a ``data file:`` field) or MetaImage
header (``.mhd``/``.mha`` with ``ElementDataFile`` other than ``LOCAL``) names other files that
hold the voxels. :func:`check_header_data_files` refuses, before SimpleITK opens them, a named
data file that is missing or not a regular file (a named pipe made the reader block forever).
:func:`input_files` lists every file the image or mask readers read for one path, so that the
cohort runner's resume hash covers their contents (a SPINEPS subregion mask beside the instance
mask, a header's data files, every file of a folder).

Header forms understood (NRRD 0005, MetaImage as written by ITK):

* NRRD ``data file: <name>``; ``data file: LIST [<subdim>]`` followed by one name per line
  (to the end of the header file); ``data file: <printf format> <min> <max> <step> [<subdim>]``
  (``slice%03d.raw 1 10 1``). ``datafile:`` is accepted as a synonym.
* MetaImage ``ElementDataFile = <name>``; ``= LIST [<dim>]`` followed by one name per line;
  ``= <printf format> <min> <max> <step>``; ``= LOCAL`` (no other file).

Relative names are relative to the header's folder.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from ..errors import InputError

__all__ = ["MAX_HEADER_BYTES", "check_header_data_files", "header_data_files", "input_files"]

#: At most this many bytes of a header are parsed (a header is a few hundred bytes).
MAX_HEADER_BYTES = 1 << 20
#: At most this many data files named by one header (a printf range of 10**9 names is refused).
MAX_DATA_FILES = 100_000

_NRRD_DATAFILE = re.compile(rb"^\s*data\s*file\s*:\s*(.*?)\s*$", re.IGNORECASE)
_META_DATAFILE = re.compile(rb"^\s*ElementDataFile\s*=\s*(.*?)\s*$", re.IGNORECASE)
_PRINTF = re.compile(r"%[-+ #0]*\d*[diouxX]")


def _read_head(path: Path) -> bytes:
    with open(path, "rb") as fh:
        return fh.read(MAX_HEADER_BYTES)


def _printf_names(spec: str, header: Path) -> list[str] | None:
    """Names of a printf-style ``<format> <min> <max> <step> [<subdim>]`` field, or None."""
    parts = spec.split()
    if len(parts) < 4 or not _PRINTF.search(parts[0]):
        return None
    try:
        lo, hi, step = int(parts[1]), int(parts[2]), int(parts[3])
    except ValueError:
        return None
    if step == 0 or (hi - lo) * step < 0:
        raise InputError(
            f"{header}: the data file range {spec!r} is empty or has step 0; fix the header's data file field"
        )
    n = abs(hi - lo) // abs(step) + 1
    if n > MAX_DATA_FILES:
        raise InputError(f"{header}: names {n} data files ({spec!r}); at most {MAX_DATA_FILES} are read")
    end = hi + (1 if step > 0 else -1)
    try:
        return [parts[0] % i for i in range(lo, end, step)]
    except (TypeError, ValueError) as exc:
        raise InputError(f"{header}: the data file format {parts[0]!r} is not valid ({exc})") from exc


def _names(field: bytes, rest: list[bytes], header: Path) -> list[str]:
    spec = field.decode("utf-8", "replace").strip()
    word = spec.split()[0] if spec.split() else ""
    if not spec or word.upper() == "LOCAL":
        return []
    if word.upper() == "LIST":
        names = [ln.decode("utf-8", "replace").strip() for ln in rest]
        names = [n for n in names if n]
        if not names:
            raise InputError(f"{header}: 'data file: LIST' names no data file; list the files after it")
        if len(names) > MAX_DATA_FILES:
            raise InputError(f"{header}: names {len(names)} data files; at most {MAX_DATA_FILES} are read")
        return names
    printf = _printf_names(spec, header)
    return printf if printf is not None else [spec]


def header_data_files(path: str | os.PathLike[str]) -> list[Path]:
    """The data files a detached NRRD or MetaImage header names (none for other files).

    Parameters
    ----------
    path : path-like
        A ``.nrrd``/``.nhdr``/``.mha``/``.mhd`` file (other names give an empty list). Only its
        header is read (at most :data:`MAX_HEADER_BYTES`).

    Returns
    -------
    list of Path
        Each named data file, relative names resolved against the header's folder, in the
        header's order; empty for an attached header (``LOCAL``, no ``data file:`` field).

    Raises
    ------
    InputError
        A malformed ``LIST`` or printf-style field, or more than ``MAX_DATA_FILES`` names.
    """
    p = Path(path)
    name = p.name.lower()
    if name.endswith((".nrrd", ".nhdr")):
        pattern, stop_at_blank = _NRRD_DATAFILE, True
    elif name.endswith((".mha", ".mhd")):
        pattern, stop_at_blank = _META_DATAFILE, False
    else:
        return []
    lines = _read_head(p).split(b"\n")
    for i, raw in enumerate(lines):
        line = raw.rstrip(b"\r")
        if stop_at_blank and not line.strip():
            break  # end of an NRRD header: attached data follow
        if stop_at_blank and line.startswith(b"#"):
            continue
        m = pattern.match(line)
        if m is None:
            continue
        rest = [r.rstrip(b"\r") for r in lines[i + 1 :]]
        if stop_at_blank:  # NRRD: a LIST runs to the end of the file, or of the header
            rest = rest[: next((j for j, r in enumerate(rest) if not r.strip()), len(rest))]
        return [p.parent / n if not Path(n).is_absolute() else Path(n) for n in _names(m.group(1), rest, p)]
    return []


def check_header_data_files(path: str | os.PathLike[str]) -> list[Path]:
    """Refuse a header whose data file is missing or not a regular file, before it is opened.

    Parameters
    ----------
    path : path-like
        An NRRD or MetaImage file (a regular file; other names are accepted unchecked).

    Returns
    -------
    list of Path
        The data files named (see :func:`header_data_files`), all regular readable files.

    Raises
    ------
    InputError
        A named data file does not exist, is a folder, a named pipe, socket or device, or cannot
        be read; the message names the data file and the header.
    """
    p = Path(path)
    files = header_data_files(p)
    for f in files:
        if not f.exists():
            raise InputError(
                f"{f}: the data file named by the header {p} does not exist; put it next to the header "
                "or fix the header's data file field"
            )
        if not f.is_file():
            raise InputError(
                f"{f}: the data file named by the header {p} is not a regular file (a folder, named pipe, "
                "socket or device) and cannot be read; point the header at the voxel data file"
            )
        if not os.access(f, os.R_OK):
            raise InputError(f"{f}: the data file named by the header {p} cannot be read (permission denied)")
    return files


def input_files(path: str | os.PathLike[str]) -> list[Path]:
    """Every file read when ``path`` is loaded as an image or a mask.

    Parameters
    ----------
    path : path-like
        An image or mask file, or a folder (DICOM series, TotalSegmentator folder).

    Returns
    -------
    list of Path
        For a folder, every regular file under it (sorted); for a file, the file, the data
        files its header names (:func:`header_data_files`, only those that are regular files:
        a missing one or a named pipe is refused by the reader) and, for a SPINEPS instance
        mask, the subregion mask beside it (:func:`spinemri.io.mask_formats.spineps_partner`).
        A path that is not a regular file or folder gives an empty list.
    """
    from .mask_formats import is_spineps_vert, spineps_partner

    p = Path(path)
    if p.is_dir():
        return sorted(f for f in p.rglob("*") if f.is_file())
    if not p.is_file():
        return []
    files = [p]
    try:
        files.extend(f for f in header_data_files(p) if f.is_file())
    except (InputError, OSError):
        pass  # the reader reports it
    if is_spineps_vert(p):
        partner = spineps_partner(p)
        if partner is not None:
            files.append(partner)
    return files
