"""NIfTI (nibabel) and NRRD / MetaImage (SimpleITK) volume files."""

from __future__ import annotations

import gzip
import io
import os
import re
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import GeometryError, InputError
from ..volume import Volume
from .atomic import atomic_path
from .convert import from_nibabel, from_sitk, to_nibabel, to_sitk

__all__ = [
    "NIFTI_SUFFIXES",
    "ITK_SUFFIXES",
    "is_nifti",
    "is_itk",
    "load_nifti",
    "nifti_gz_bytes",
    "load_itk",
    "save_nifti",
    "save_itk",
    "label_names_from_nifti",
    "MAX_VOXELS",
    "check_regular_file",
    "refuse_non_finite",
]

NIFTI_SUFFIXES = (".nii", ".nii.gz")
ITK_SUFFIXES = (".nrrd", ".nhdr", ".mha", ".mhd")

#: Refuse files declaring more voxels than this before reading any data
#: (2**30, about 1.07e9 voxels: 4x a 1024x1024x256 volume, far beyond any spine series).
MAX_VOXELS = 2**30

#: Above this many declared bytes, a gzip-compressed NIfTI is checked to hold
#: that much data (by streaming it once) before nibabel allocates the array.
_GZIP_CHECK_BYTES = 2**28

_LABEL_RE = re.compile(r"<Label\s+Key=\"(-?\d+)\"[^>]*>\s*(?:<!\[CDATA\[(.*?)\]\]>|([^<]*))\s*</Label>", re.S)


def _lower_name(path: Path) -> str:
    return path.name.lower()


def is_nifti(path: str | Path) -> bool:
    """True when the file name ends in ``.nii`` or ``.nii.gz`` (any case).

    Parameters
    ----------
    path : str or Path
        A file name; the file need not exist (only the name is checked).

    Returns
    -------
    bool
        Whether the name ends in one of :data:`NIFTI_SUFFIXES`.
    """
    return _lower_name(Path(path)).endswith(NIFTI_SUFFIXES)


def is_itk(path: str | Path) -> bool:
    """True when the file name ends in a NRRD or MetaImage suffix (any case).

    Parameters
    ----------
    path : str or Path
        A file name; the file need not exist (only the name is checked).

    Returns
    -------
    bool
        Whether the name ends in one of :data:`ITK_SUFFIXES`
        (``.nrrd``, ``.nhdr``, ``.mha``, ``.mhd``).
    """
    return _lower_name(Path(path)).endswith(ITK_SUFFIXES)


def _check_file(path: Path) -> None:
    if not path.exists():
        raise InputError(f"{path}: no such file; check the path")
    if path.is_dir():
        raise InputError(f"{path}: is a folder, but a {path.name.split('.', 1)[-1]} file was expected")
    check_regular_file(path)


def check_regular_file(path: Path) -> None:
    """Refuse a path that is not a regular readable file (a FIFO would block the reader forever).

    Parameters
    ----------
    path : Path
        An existing path (symlinks are followed).

    Raises
    ------
    InputError
        For a named pipe, socket or device, or a file the process may not read.
    """
    if not path.is_file():
        raise InputError(
            f"{path}: is not a regular file (a named pipe, socket or device), so it cannot be read as an "
            "image or table; pass the file itself"
        )
    if not os.access(path, os.R_OK):
        raise InputError(f"{path}: cannot be read (permission denied); check the file's permissions")


def _squeeze_to_3d(shape: tuple[int, ...], path: Path) -> tuple[int, int, int]:
    """The 3-D shape after dropping trailing size-1 dimensions, or InputError."""
    if len(shape) < 3:
        raise InputError(
            f"{path}: the image is {len(shape)}-D with shape {shape}; spinemri needs a 3-D volume "
            "(a 2-D slice cannot be measured per vertebra); export the whole series"
        )
    if any(n > 1 for n in shape[3:]):
        raise InputError(
            f"{path}: the image is {len(shape)}-D with shape {shape} (several volumes, echoes or "
            "components); spinemri measures one 3-D volume: extract the volume you want first "
            "(e.g. fslroi, or nibabel's img.slicer[..., 0]) and pass that file"
        )
    if any(n < 1 for n in shape[:3]):
        raise InputError(
            f"{path}: the header declares an empty dimension, shape {shape}; the file is corrupt"
        )
    n_voxels = int(np.prod(np.array(shape[:3], dtype=np.float64)))
    if n_voxels > MAX_VOXELS:
        raise InputError(
            f"{path}: the header declares shape {shape[:3]} = {n_voxels:.3g} voxels, more than the "
            f"{MAX_VOXELS:.3g} spinemri accepts; the header is probably corrupt (re-export the file)"
        )
    return (int(shape[0]), int(shape[1]), int(shape[2]))


def _gzip_holds(path: Path, n_bytes: int) -> bool:
    """True when the decompressed stream of ``path`` is at least ``n_bytes`` long."""
    seen = 0
    with gzip.open(path, "rb") as fh:
        while seen < n_bytes:
            chunk = fh.read(min(2**24, n_bytes - seen))
            if not chunk:
                return False
            seen += len(chunk)
    return True


def _check_data_size(img: Any, path: Path) -> None:
    """Refuse a header that declares more voxel bytes than the file holds, before reading."""
    header = img.header
    try:
        offset = int(getattr(img.dataobj, "offset", None) or header.get_data_offset())
        n_bytes = (
            int(np.prod(np.array(img.shape, dtype=np.int64))) * np.dtype(header.get_data_dtype()).itemsize
        )
    except Exception:  # odd headers: let the read itself fail with a clear message
        return
    if _lower_name(path).endswith(".nii"):
        size = path.stat().st_size
        if size < offset + n_bytes:
            raise InputError(
                f"{path}: the header declares {n_bytes} bytes of voxel data from offset {offset} "
                f"(shape {tuple(img.shape)}, {header.get_data_dtype()}), but the file has only {size} bytes; "
                "it is truncated or the header is wrong: copy or export the file again"
            )
    elif n_bytes > _GZIP_CHECK_BYTES:
        try:
            ok = _gzip_holds(path, offset + n_bytes)
        except (OSError, EOFError, zlib.error) as exc:
            raise InputError(f"{path}: the gzip stream is corrupt ({exc}); export the file again") from exc
        if not ok:
            raise InputError(
                f"{path}: the header declares {n_bytes} bytes of voxel data but the compressed file holds "
                "less; it is truncated or the header is wrong: export the file again"
            )


def _check_offset(img: Any, path: Path) -> None:
    """Refuse a vox_offset inside the header of a single-file NIfTI (the voxels would be header bytes)."""
    minimum = int(getattr(img.header, "single_vox_offset", 0) or 0)
    offset = getattr(img.dataobj, "offset", None)
    if offset is not None and 0 <= int(offset) < minimum:
        raise InputError(
            f"{path}: vox_offset {int(offset)} points inside the {minimum}-byte header of a single-file "
            "NIfTI, "
            "so the voxels read would be header bytes; the header is corrupt: export the file again"
        )


def _check_raw_pixdim(img: Any, path: Path) -> None:
    """Refuse a zero or non-finite voxel size in pixdim[1:4] when the affine comes from pixdim (no sform).

    nibabel's header check silently replaces a zero pixdim by 1 mm while loading, so the
    header is read again here without that fix.
    """
    from nibabel.openers import ImageOpener

    try:
        with ImageOpener(str(path)) as fobj:
            raw = type(img.header).from_fileobj(fobj, check=False)
        pixdim = np.asarray(raw["pixdim"][1:4], dtype=np.float64)
    except Exception:  # nibabel read it once already; a failure here is left to the data read
        return
    if np.all(np.isfinite(pixdim)) and np.all(pixdim != 0):
        return
    raise GeometryError(
        f"{path}: the header has no sform and its voxel sizes pixdim[1:4] = {pixdim.tolist()} include a zero "
        "or non-finite value, so the voxel size is unknown (nibabel would silently assume 1 mm); "
        "fix pixdim or export the file again"
    )


def label_names_from_nifti(header: Any) -> dict[int, str]:
    """Label names from a NIfTI header extension, as TotalSegmentator writes them.

    TotalSegmentator stores a Caret-style XML ``<Label Key="N">name</Label>``
    table (``CaretExtension``, extension code 0) in the header; when present,
    these names beat numbers in :func:`spinemri.scheme_choice.resolve_scheme`.

    Parameters
    ----------
    header : nibabel.nifti1.Nifti1Header
        Any object with an ``extensions`` list whose items have
        ``get_content()`` (bytes are decoded as UTF-8); malformed extensions
        are skipped.

    Returns
    -------
    dict of int to str
        ``{label: name}``; ``{}`` when the header holds no label table.
    """
    names: dict[int, str] = {}
    for ext in getattr(header, "extensions", []) or []:
        try:
            content = ext.get_content()
        except Exception:  # a malformed extension must not stop loading the image
            continue
        if isinstance(content, bytes):
            content = content.decode("utf-8", errors="replace")
        if not isinstance(content, str) or "<Label" not in content:
            continue
        for key, cdata, plain in _LABEL_RE.findall(content):
            name = (cdata or plain).strip()
            if name:
                names[int(key)] = name
    return names


def load_nifti(path: str | Path) -> Volume:
    """Load a ``.nii`` / ``.nii.gz`` file as a Volume.

    Parameters
    ----------
    path : path-like
        A NIfTI-1 or NIfTI-2 file, optionally gzip-compressed.

    Returns
    -------
    Volume
        Affine ``img.affine`` as nibabel chooses it (sform when its code is
        > 0, else qform, else zooms only). Voxels in the on-disk dtype, or
        float32 when the header has a scale slope/intercept. Trailing size-1
        dimensions are dropped. ``meta``: ``source``, ``format`` ("nifti"),
        ``qform_code``, ``sform_code``, ``on_disk_dtype`` and, when the
        header carries a label table, ``label_names`` ({int: str}).

    Raises
    ------
    InputError
        Missing file, a folder, not NIfTI, corrupt gzip, truncated data, a
        2-D or real 4-D/5-D image, a header declaring more than
        :data:`MAX_VOXELS` voxels (refused before any allocation), or NaN or
        infinite voxel values.
    GeometryError
        The header's affine is invalid (NaN, singular).
    """
    import nibabel as nib

    path = Path(path)
    _check_file(path)
    try:
        img: Any = nib.load(str(path))
    except Exception as exc:  # nibabel raises many types for corrupt headers / gzip streams
        raise InputError(
            f"{path}: not a readable NIfTI file ({type(exc).__name__}: {exc}); "
            "check that it is a complete .nii/.nii.gz file"
        ) from exc
    _squeeze_to_3d(tuple(int(n) for n in img.shape), path)
    on_disk = np.dtype(img.header.get_data_dtype())
    if on_disk.kind == "c":  # was reported as an invalid qform/sform
        raise InputError(
            f"{path}: the voxels have the complex data type {on_disk} (real and imaginary parts); this is "
            "not an MR magnitude image: export the magnitude image (abs) instead"
        )
    _check_offset(img, path)
    _check_data_size(img, path)
    header = img.header
    if int(header["sform_code"]) == 0:
        _check_raw_pixdim(img, path)
    meta: dict[str, Any] = {
        "source": str(path),
        "format": "nifti",
        "qform_code": int(header["qform_code"]),
        "sform_code": int(header["sform_code"]),
        "on_disk_dtype": str(header.get_data_dtype()),
    }
    names = label_names_from_nifti(header)
    if names:
        meta["label_names"] = names
    try:
        vol = from_nibabel(img, meta, fresh=True)  # img is local: Volume takes the array read
    except GeometryError as exc:
        raise GeometryError(
            f"{path}: the header's voxel-to-world geometry is invalid ({exc}); fix the qform/sform or "
            "export the file again"
        ) from exc
    except (OSError, EOFError, ValueError, zlib.error) as exc:
        raise InputError(
            f"{path}: the voxel data cannot be read ({type(exc).__name__}: {exc}); "
            "the file is truncated or corrupt: export it again"
        ) from exc
    refuse_non_finite(vol.data, path)
    return vol


def refuse_non_finite(data: np.ndarray, path: Path | str) -> None:
    """Refuse NaN or infinite voxel values (docs/robustness.md: refused, not silently handled).

    Parameters
    ----------
    data : ndarray
        Voxel values of any shape; only floating dtypes are checked.
    path : Path or str
        The file they were read from, named in the error message.

    Raises
    ------
    InputError
        Naming the file, the number of NaN and infinite voxels and the first one.
    """
    if data.dtype.kind != "f":
        return
    bad = ~np.isfinite(data)
    if not bad.any():
        return
    n_nan = int(np.count_nonzero(np.isnan(data)))
    n_inf = int(np.count_nonzero(bad)) - n_nan
    first = tuple(int(x) for x in np.argwhere(bad)[0])
    raise InputError(
        f"{path}: holds {n_nan} NaN and {n_inf} infinite voxel value(s) (first at voxel {first}); "
        "spinemri refuses non-finite values (in an image, lesion thresholds and statistics would silently "
        "drop or be poisoned by them; in a mask they are no labels): replace them with a number "
        "(e.g. fslmaths in.nii.gz -nan out.nii.gz, or "
        "numpy.nan_to_num) and pass that file"
    )


def _itk_label_names(reader: Any) -> dict[int, str]:
    """Segment names from a 3D Slicer ``.seg.nrrd`` header (SegmentN_Name / SegmentN_LabelValue)."""
    keys = set(reader.GetMetaDataKeys())
    names: dict[int, str] = {}
    for key in keys:
        m = re.fullmatch(r"Segment(\d+)_Name", key)
        if not m:
            continue
        value_key = f"Segment{m.group(1)}_LabelValue"
        if value_key in keys:
            try:
                names[int(reader.GetMetaData(value_key))] = reader.GetMetaData(key).strip()
            except ValueError:
                continue
    return names


def load_itk(path: str | Path) -> Volume:
    """Load an NRRD (``.nrrd``, ``.nhdr``) or MetaImage (``.mha``, ``.mhd``) file via SimpleITK.

    Parameters
    ----------
    path : path-like

    Returns
    -------
    Volume
        Voxels in the file's dtype; affine converted from ITK's LPS
        origin/spacing/direction by :func:`spinemri.io.convert.from_sitk`.
        ``meta``: ``source``, ``format`` (the suffix) and ``label_names`` for
        3D Slicer segmentation files.

    Raises
    ------
    InputError
        Missing or unreadable file, a data file named by a detached header that is missing
        or not a regular file (:func:`spinemri.io.inputs.check_header_data_files`),
        vector/RGB voxels, not 3-D, or more than
        :data:`MAX_VOXELS` voxels declared (checked from the header alone).
    """
    import SimpleITK as sitk

    from .inputs import check_header_data_files

    path = Path(path)
    _check_file(path)
    check_header_data_files(path)  # a data file that is a named pipe blocked SimpleITK forever
    reader = sitk.ImageFileReader()
    reader.SetFileName(str(path))
    try:
        reader.ReadImageInformation()
    except RuntimeError as exc:
        raise InputError(f"{path}: not a readable NRRD/MetaImage file: {str(exc).strip()[-300:]}") from exc
    _squeeze_to_3d(tuple(int(n) for n in reader.GetSize()), path)
    if reader.GetNumberOfComponents() != 1:
        raise InputError(
            f"{path}: the image has {reader.GetNumberOfComponents()} components per voxel "
            "(vector or RGB); spinemri needs one scalar value per voxel"
        )
    try:
        img = reader.Execute()
    except RuntimeError as exc:
        raise InputError(
            f"{path}: the voxel data cannot be read (truncated or corrupt): {str(exc).strip()[-300:]}"
        ) from exc
    if img.GetDimension() > 3:
        extract = sitk.ExtractImageFilter()
        extract.SetSize([*img.GetSize()[:3], *([0] * (img.GetDimension() - 3))])
        extract.SetIndex([0] * img.GetDimension())
        img = extract.Execute(img)
    meta: dict[str, Any] = {"source": str(path), "format": path.name.lower().rsplit(".", 1)[-1]}
    names = _itk_label_names(reader)
    if names:
        meta["label_names"] = names
    try:
        vol = from_sitk(img, meta)
    except GeometryError as exc:
        raise GeometryError(
            f"{path}: the header's spacing/origin/direction are invalid ({exc}); export the file again"
        ) from exc
    refuse_non_finite(vol.data, path)
    return vol


def _refuse_folder_target(path: Path) -> None:
    if path.is_dir():
        raise InputError(f"{path}: is a folder, so the image cannot be written there; choose a file name")


def save_nifti(volume: Volume, path: str | Path, *, dtype: Any = None) -> Path:
    """Write a Volume as NIfTI-1 atomically (temporary name, then rename).

    Parameters
    ----------
    volume : Volume
    path : path-like
        ``.nii`` or ``.nii.gz``.
    dtype : numpy dtype, optional
        Cast the data first (e.g. ``np.uint8`` for label maps).

    Returns
    -------
    Path
        The written path. :func:`load_nifti` reads back identical voxels.
        The header stores the affine as float32 (NIfTI-1 srow), so the affine
        read back is the float32-rounded affine: exact when every entry is
        representable in float32, else within float32 precision (~6e-8 relative).
    """
    import nibabel as nib

    path = Path(path)
    if not is_nifti(path):
        raise InputError(f"{path}: a NIfTI file name must end in .nii or .nii.gz")
    _refuse_folder_target(path)
    vol = volume if dtype is None else volume.with_data(np.asarray(volume.data).astype(dtype))
    img = to_nibabel(vol)
    with atomic_path(path) as tmp:
        nib.save(img, str(tmp))
    return path


def nifti_gz_bytes(volume: Volume) -> bytes:
    """A Volume as the bytes of a ``.nii.gz`` file (NIfTI-1, gzip level 1 as nibabel writes, mtime 0).

    For a worker process to compress a label map itself and hand over a few
    kilobytes instead of the array; :func:`load_nifti` of the bytes written to
    a file gives the same voxels and affine as :func:`save_nifti`.

    Parameters
    ----------
    volume : Volume
        Written with its own dtype and affine (no cast, unlike ``save_nifti(dtype=...)``).

    Returns
    -------
    bytes
        A complete gzip stream of a NIfTI-1 single file (``.nii.gz``);
        identical for identical volumes (gzip mtime 0).
    """
    # nibabel writes the file into a sink that compresses as it goes: the same bytes as
    # gzip.compress(to_nibabel(volume).to_bytes(), compresslevel=1, mtime=0) (zlib's output does
    # not depend on how its input is cut), without the uncompressed file in memory (for a
    # 512 x 512 x 120 uint8 lesion map ~30 MB of serialised bytes and its copies)
    sink = _GzipSink()
    to_nibabel(volume).to_stream(sink)
    return sink.getvalue()


class _GzipSink(io.RawIOBase):
    """A write-only stream that gzip-compresses (level 1, mtime 0) what nibabel writes to it."""

    def __init__(self) -> None:
        super().__init__()
        self._z = zlib.compressobj(1, zlib.DEFLATED, 31)  # wbits 31: a gzip stream, mtime 0
        self._parts: list[bytes] = []
        self._pos = 0

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True  # nibabel asks, and only ever seeks to where it already is

    def write(self, b: Any) -> int:
        mv = memoryview(b).cast("B")
        self._parts.append(self._z.compress(mv))
        self._pos += mv.nbytes
        return mv.nbytes

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = 0) -> int:
        target = offset if whence == 0 else self._pos + offset if whence == 1 else -1
        if target != self._pos:
            raise OSError(f"a compressing stream cannot seek (to {offset}, whence {whence}, at {self._pos})")
        return self._pos

    def getvalue(self) -> bytes:
        """The complete gzip stream (call once, after writing)."""
        return b"".join([*self._parts, self._z.flush()])


def save_itk(volume: Volume, path: str | Path) -> Path:
    """Write a Volume as ``.nrrd`` or ``.mha`` (by suffix) atomically via SimpleITK.

    Voxels read back by :func:`load_itk` are identical; the geometry is what
    :func:`spinemri.io.convert.to_sitk` produced, written as decimal text
    (round trip tested in tests/properties/test_roundtrips.py).

    Parameters
    ----------
    volume : Volume
        The image; its RAS+ affine is stored as LPS+ origin, spacing and
        direction (mm).
    path : str or Path
        ``.nrrd`` or ``.mha`` (any case); written compressed.

    Returns
    -------
    Path
        ``Path(path)``, the written file.

    Raises
    ------
    InputError
        For another suffix (including detached-header ``.nhdr``/``.mhd``),
        or when ``path`` is a folder.
    """
    import SimpleITK as sitk

    path = Path(path)
    if not _lower_name(path).endswith((".nrrd", ".mha")):
        raise InputError(
            f"{path}: spinemri writes single-file NRRD (.nrrd) or MetaImage (.mha) only; "
            "detached headers (.nhdr, .mhd) cannot be written atomically"
        )
    _refuse_folder_target(path)
    with atomic_path(path) as tmp:
        sitk.WriteImage(to_sitk(volume), str(tmp), useCompression=True)
    return path
