"""JPEG 2000 series decoded on several threads (imagecodecs), with pydicom's result.

pydicom decodes JPEG 2000 with pylibjpeg-openjpeg, which holds the GIL: a
120-slice series decodes on one core however many it has. imagecodecs'
``jpeg2k_decode`` (the same OpenJPEG library) releases the GIL, so a thread
pool over the frames uses every core. This is only a faster route to the
same array: a frame whose decoded shape or dtype is not what pydicom would
return (a codestream whose sign or bit depth disagrees with the header,
which pydicom corrects) sends the whole series back to pydicom, and any
decoding failure is reported by pydicom's path with its message.

Used by :func:`spinemri.io.dicom.assemble.headers_to_volume` when imagecodecs is
installed (the ``codecs`` extra); without it nothing changes.
:func:`frame_codestreams` splits an encapsulated file into its frames' codestreams.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .pixels import pixel_bytes

__all__ = ["JPEG2000_UIDS", "available", "decode_series", "frame_codestreams"]

#: JPEG 2000 transfer syntaxes (Part 1 lossless-only and lossy/lossless).
JPEG2000_UIDS = frozenset({"1.2.840.10008.1.2.4.90", "1.2.840.10008.1.2.4.91"})

#: Decoding threads at most (each frame is decoded on one thread).
MAX_THREADS = 8


def available() -> bool:
    """Whether imagecodecs (with its JPEG 2000 codec) can be imported.

    Returns
    -------
    bool
    """
    return importlib.util.find_spec("imagecodecs") is not None


def decode_series(
    files: Sequence[tuple[Path, Any, int]],
    rows: int,
    cols: int,
    dtype: np.dtype,
    fragments: Any,
) -> list[np.ndarray] | None:
    """Decode every frame of JPEG 2000 files on a thread pool.

    Parameters
    ----------
    files : sequence of (path, dataset, number of frames)
        Files whose transfer syntax is in :data:`JPEG2000_UIDS`.
    rows, cols : int
        Frame size the headers declare.
    dtype : numpy dtype
        What pydicom returns for these headers (BitsAllocated, PixelRepresentation).
    fragments : callable
        ``fragments(path, ds, n_frames) -> list[bytes]``: the codestream of
        each frame of a file (raises on a broken encapsulation).

    Returns
    -------
    list of ndarray of shape (n_frames, rows, cols), one per file, or None
        None when any frame fails to decode or decodes to another shape or
        dtype: the caller then decodes with pydicom, which corrects or
        reports it.
    """
    import imagecodecs

    try:
        streams = [fragments(path, ds, n) for path, ds, n in files]
    except Exception:
        return None
    if any(len(frames) != n for frames, (_, _, n) in zip(streams, files, strict=True)):
        return None
    jobs = [(fi, k, s) for fi, frames in enumerate(streams) for k, s in enumerate(frames)]
    out = [np.empty((n, rows, cols), dtype=dtype) for _, _, n in files]

    def decode(job: tuple[int, int, bytes]) -> bool:
        fi, k, stream = job
        try:
            arr = imagecodecs.jpeg2k_decode(stream, numthreads=1)
        except Exception:
            return False
        if arr.shape != (rows, cols) or arr.dtype != dtype:
            return False
        out[fi][k] = arr
        return True

    threads = min(MAX_THREADS, os.cpu_count() or 1, len(jobs))
    if threads > 1:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(threads) as pool:
            ok = all(pool.map(decode, jobs))
    else:
        ok = all(decode(job) for job in jobs)
    return out if ok else None


def frame_codestreams(path: Path, ds: Any, n_frames: int) -> list[bytes]:
    """The codestream of each frame of an encapsulated (compressed) file.

    Parameters
    ----------
    path : Path
        The file.
    ds : pydicom.Dataset
        Its header (PixelData read or deferred).
    n_frames : int
        NumberOfFrames.

    Returns
    -------
    list of bytes
        One codestream per frame.

    Raises
    ------
    ValueError
        No pixel data; pydicom's errors for a broken encapsulation.
    """
    from pydicom.encaps import generate_frames

    data = pixel_bytes(path, ds)
    if data is None:
        raise ValueError("no pixel data")
    return list(generate_frames(data, number_of_frames=n_frames))
