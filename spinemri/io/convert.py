"""Lossless conversions between :class:`~spinemri.volume.Volume` and nibabel / SimpleITK images.

This is the one place where the two coordinate conventions meet:

* nibabel / NIfTI / spinemri: array indexed (i, j, k), affine maps to RAS+ mm.
* SimpleITK / ITK / DICOM: ``GetArrayFromImage`` returns the array indexed
  (k, j, i) (slowest axis first), and origin / direction are in LPS+ mm. A
  DICOM stack of frames is indexed the same way: (slice, row, column).

So :func:`to_sitk` transposes the array once (:func:`ijk_to_kji`) and flips
the sign of the first two world axes once (:func:`ras_to_lps`,
``LPS = diag(-1, -1, 1) @ RAS``); :func:`from_sitk` undoes both
(:func:`kji_to_ijk`, :func:`lps_to_ras`). The DICOM reader and writers
(:mod:`spinemri.io.dicom`) call the same four functions: nothing else in
spinemri transposes frames or flips world axes.

Exactness (proven by tests/properties/test_roundtrips.py):

* Volume -> nibabel image -> Volume: data and affine bit-for-bit identical
  (nibabel keeps the float64 affine in memory).
* Volume -> SimpleITK -> Volume: data identical; the affine comes back to
  within a few ulp (|error| <= 1e-12 * max(1, |value|)), because SimpleITK
  stores spacing and unit direction cosines separately, and
  ``(a / s) * s`` need not equal ``a`` in floating point. Axis-aligned
  affines whose spacings are exact in binary come back exactly.
* Casts: ``bool`` becomes ``uint8`` and ``float16`` becomes ``float32`` on the
  way out (neither NIfTI nor ITK stores them); values are unchanged.
"""

from __future__ import annotations

from typing import Any, cast

import numpy as np

from ..errors import GeometryError
from ..volume import Volume, voxel_spacing

__all__ = [
    "RAS_TO_LPS",
    "ras_to_lps",
    "lps_to_ras",
    "ijk_to_kji",
    "kji_to_ijk",
    "storable",
    "nibabel_voxels",
    "to_nibabel",
    "from_nibabel",
    "to_sitk",
    "sitk_affine",
    "from_sitk",
]

#: Flip between RAS+ and LPS+ world coordinates (its own inverse).
RAS_TO_LPS = np.diag([-1.0, -1.0, 1.0, 1.0])
RAS_TO_LPS.flags.writeable = False


def ras_to_lps(affine: np.ndarray) -> np.ndarray:
    """An affine (or any 4 x N matrix of homogeneous points) mapping to RAS+, made to map to LPS+.

    Parameters
    ----------
    affine : ndarray of shape (4, N)
        Maps to RAS+ mm (e.g. a Volume's affine).

    Returns
    -------
    ndarray of shape (4, N)
        ``RAS_TO_LPS @ affine``: rows 0 and 1 negated (a new array).
    """
    return cast(np.ndarray, RAS_TO_LPS @ affine)


def lps_to_ras(affine: np.ndarray) -> np.ndarray:
    """An affine mapping to LPS+ (DICOM, ITK), made to map to RAS+ (the inverse of :func:`ras_to_lps`).

    Parameters
    ----------
    affine : ndarray of shape (4, N)
        Maps to LPS+ mm.

    Returns
    -------
    ndarray of shape (4, N)
        ``RAS_TO_LPS @ affine`` (the flip is its own inverse; a new array).
    """
    return cast(np.ndarray, RAS_TO_LPS @ affine)


def ijk_to_kji(data: np.ndarray) -> np.ndarray:
    """spinemri's (i, j, k) array as (k, j, i): ITK's order, and a DICOM stack of (slice, row, column) frames.

    Parameters
    ----------
    data : ndarray of shape (I, J, K)
        i = column, j = row, k = slice.

    Returns
    -------
    ndarray of shape (K, J, I)
        ``data.transpose(2, 1, 0)`` (a view).
    """
    return cast(np.ndarray, data.transpose(2, 1, 0))


def kji_to_ijk(arr: np.ndarray) -> np.ndarray:
    """A (k, j, i) array (ITK order, a stack of DICOM frames) as (i, j, k); inverse of :func:`ijk_to_kji`.

    Parameters
    ----------
    arr : ndarray of shape (K, J, I)
        Slice, row, column.

    Returns
    -------
    ndarray of shape (I, J, K)
        ``arr.transpose(2, 1, 0)`` (a view).
    """
    return cast(np.ndarray, arr.transpose(2, 1, 0))


def storable(data: np.ndarray) -> np.ndarray:
    """``data`` in a dtype NIfTI and ITK can store, with the same values.

    ``bool`` -> ``uint8``, ``float16`` -> ``float32``; other dtypes unchanged.

    Parameters
    ----------
    data : array-like

    Returns
    -------
    ndarray
    """
    arr = np.asarray(data)
    if arr.dtype == np.bool_:
        return arr.astype(np.uint8)
    if arr.dtype == np.float16:
        return arr.astype(np.float32)
    return arr


def _is_orthogonal(affine: np.ndarray, atol: float = 1e-6) -> bool:
    m = affine[:3, :3] / np.array(voxel_spacing(affine))
    return bool(np.allclose(m.T @ m, np.eye(3), rtol=0.0, atol=atol))


def to_nibabel(volume: Volume) -> Any:
    """A ``nibabel.Nifti1Image`` with the volume's voxels and affine.

    Parameters
    ----------
    volume : Volume of shape (I, J, K)

    Returns
    -------
    nibabel.Nifti1Image
        Same data (see :func:`storable` for the two casts) stored without
        scaling, ``img.affine`` equal to ``volume.affine``; sform code 1
        (scanner), qform code 1 too when the affine has no shear (a qform
        cannot represent shear, so it is then left unset, code 0). Units mm.
    """
    import nibabel as nib

    data = storable(volume.data)
    img = nib.Nifti1Image(data, volume.affine, dtype=data.dtype)
    img.header.set_xyzt_units("mm")
    # update_affine=False: the header stores srow/quaternion as float32, but img.affine must stay
    # the exact float64 affine (nibabel writes the header from it again on save)
    img.set_sform(volume.affine, code=1, update_affine=False)
    if _is_orthogonal(volume.affine):
        img.set_qform(volume.affine, code=1, update_affine=False)
    else:
        img.set_qform(None, code=0, update_affine=False)
    return img


def nibabel_voxels(img: Any) -> np.ndarray:
    """Voxel values of a nibabel image, in the dtype the file implies.

    Without scaling in the header (slope 1, intercept 0, or unset) the
    on-disk dtype is kept (an int16 image stays int16, a float64 mask stays
    float64). With a slope or intercept, the scaled values are returned as
    float32 (``img.get_fdata(dtype=np.float32)``).

    Parameters
    ----------
    img : nibabel spatial image

    Returns
    -------
    ndarray
    """
    dataobj = img.dataobj
    slope = getattr(dataobj, "slope", 1.0)
    inter = getattr(dataobj, "inter", 0.0)
    unscaled = (slope is None or float(slope) == 1.0) and (inter is None or float(inter) == 0.0)
    if unscaled:
        return np.asarray(np.asanyarray(dataobj))
    return np.asarray(img.get_fdata(dtype=np.float32))


def from_nibabel(img: Any, meta: dict[str, Any] | None = None, *, fresh: bool = False) -> Volume:
    """A Volume from a nibabel spatial image (inverse of :func:`to_nibabel`).

    Parameters
    ----------
    img : nibabel spatial image
        3-D, or with trailing dimensions of size 1 (dropped).
    meta : dict, optional
        Metadata for the Volume.
    fresh : bool, default False
        The caller guarantees that ``img`` came from ``nibabel.load`` and is discarded after
        this call, so the voxel array read from its proxy is held by nobody else: the Volume
        then takes that array read-only without copying it (:func:`spinemri.io.nifti.load_nifti`).
        Without a scale slope or intercept the voxels are then read into their array 1 MiB at a
        time (no temporary of the image's size, no memory map; the same array nibabel reads). An
        in-memory image's own array is still copied.

    Returns
    -------
    Volume
        Voxels from :func:`nibabel_voxels`; affine ``img.affine`` (nibabel
        picks the sform when its code is > 0, else the qform, else a
        zooms-only fall-back, as the NIfTI standard says).

    Raises
    ------
    GeometryError
        If the image is not 3-D after dropping trailing singleton dimensions.
    """
    shape = tuple(int(n) for n in img.shape)
    while len(shape) > 3 and shape[-1] == 1:
        shape = shape[:-1]
    if len(shape) != 3:
        raise GeometryError(f"expected a 3-D image, got shape {tuple(img.shape)}")
    raw = _read_unscaled_proxy(img) if fresh else None
    data = (nibabel_voxels(img) if raw is None else raw).reshape(shape)
    if fresh and _is_proxy(img) and not _memory_mapped(data):
        # invariant: an array read from a proxy is a new buffer only this call holds; read-only,
        # Volume shares it instead of copying (the loader's array never escapes writeable)
        data.flags.writeable = False
    return Volume(data, img.affine, meta or {})


#: Bytes read per call when :func:`_read_unscaled_proxy` fills a voxel array from a file.
READ_CHUNK_BYTES = 1 << 20


class _ChunkedReads:
    """A file's ``seek`` and a ``readinto`` that fills its buffer in :data:`READ_CHUNK_BYTES` calls.

    ``gzip.GzipFile.readinto`` reads the whole request into a temporary ``bytes`` and copies it:
    handed to nibabel's ``array_from_file`` directly, reading a .nii.gz image held it twice (the
    voxel buffer and the temporary, each the image's size). In chunks, the temporary is 1 MiB.
    """

    def __init__(self, fileobj: Any) -> None:
        self._f = fileobj
        self.name = getattr(fileobj, "name", "object")

    def seek(self, *args: Any) -> Any:
        return self._f.seek(*args)

    def readinto(self, buffer: Any) -> int:
        with memoryview(buffer) as mv, mv.cast("B") as view:
            pos = 0
            while pos < len(view):
                got = self._f.readinto(view[pos : pos + READ_CHUNK_BYTES])
                if not got:
                    break
                pos += got
            return pos


def _read_unscaled_proxy(img: Any) -> np.ndarray | None:
    """The voxels of a file-backed nibabel image without scaling, read in chunks; None otherwise.

    Exactly what ``np.asanyarray(img.dataobj)`` gives without a scale slope or intercept (nibabel's
    own ``array_from_file``: the on-disk dtype and byte order, the proxy's memory order, a writeable
    array of its own), but read into the array 1 MiB at a time, not memory-mapped: the peak is the
    array and one chunk. None (the caller falls back to :func:`nibabel_voxels`) for anything else:
    an in-memory image, a scaled proxy, a proxy type other than nibabel's ``ArrayProxy``.
    """
    from nibabel.arrayproxy import ArrayProxy
    from nibabel.openers import ImageOpener
    from nibabel.volumeutils import array_from_file

    proxy = img.dataobj
    if type(proxy) is not ArrayProxy:
        return None
    slope, inter = proxy.slope, proxy.inter
    if not ((slope is None or float(slope) == 1.0) and (inter is None or float(inter) == 0.0)):
        return None
    with ImageOpener(proxy.file_like) as opener:
        fileobj = getattr(opener, "fobj", opener)
        reads = _ChunkedReads(fileobj)
        arr: np.ndarray = array_from_file(
            proxy.shape, proxy.dtype, cast(Any, reads), offset=proxy.offset, order=proxy.order, mmap=False
        )
    return arr


def _is_proxy(img: Any) -> bool:
    """Whether ``img.dataobj`` is a nibabel array proxy (voxels read from a file on access)."""
    import nibabel as nib

    return bool(nib.is_proxy(img.dataobj))


def _memory_mapped(a: np.ndarray) -> bool:
    """Whether ``a`` (or an array it views) is a memory map of a file."""
    import mmap

    base: Any = a
    while base is not None:
        if isinstance(base, (np.memmap, mmap.mmap)):
            return True
        base = getattr(base, "base", None)
    return False


def to_sitk(volume: Volume) -> Any:
    """A ``SimpleITK.Image`` with the same voxels and world geometry (in LPS).

    The array is transposed from (i, j, k) to SimpleITK's (k, j, i) and the
    affine is flipped from RAS to LPS; spacing = column norms of the LPS
    affine, direction = the columns divided by their norms, origin = its
    translation.

    Parameters
    ----------
    volume : Volume

    Returns
    -------
    SimpleITK.Image
    """
    import SimpleITK as sitk

    data = storable(volume.data)
    img = sitk.GetImageFromArray(np.ascontiguousarray(ijk_to_kji(data)), isVector=False)
    lps = ras_to_lps(volume.affine)
    spacing = np.array(voxel_spacing(lps))
    img.SetSpacing(tuple(float(s) for s in spacing))
    img.SetOrigin(tuple(float(o) for o in lps[:3, 3]))
    img.SetDirection(tuple(float(d) for d in (lps[:3, :3] / spacing).ravel()))
    return img


def sitk_affine(img: Any) -> np.ndarray:
    """The voxel (i, j, k) -> RAS+ mm affine of a 3-D ``SimpleITK.Image``.

    Parameters
    ----------
    img : SimpleITK.Image

    Returns
    -------
    ndarray of shape (4, 4)
    """
    direction = np.array(img.GetDirection(), dtype=np.float64).reshape(3, 3)
    lps = np.eye(4)
    lps[:3, :3] = direction * np.array(img.GetSpacing(), dtype=np.float64)
    lps[:3, 3] = img.GetOrigin()
    return lps_to_ras(lps)


def from_sitk(img: Any, meta: dict[str, Any] | None = None) -> Volume:
    """A Volume from a 3-D scalar ``SimpleITK.Image`` (inverse of :func:`to_sitk`).

    Parameters
    ----------
    img : SimpleITK.Image
    meta : dict, optional
        Metadata for the Volume.

    Returns
    -------
    Volume

    Raises
    ------
    GeometryError
        If the image is not 3-D or has several components per voxel.
    """
    import SimpleITK as sitk

    if img.GetDimension() != 3 or img.GetNumberOfComponentsPerPixel() != 1:
        raise GeometryError(
            f"expected a 3-D scalar image, got dimension {img.GetDimension()} "
            f"with {img.GetNumberOfComponentsPerPixel()} components per voxel"
        )
    data = kji_to_ijk(sitk.GetArrayFromImage(img))
    return Volume(data, sitk_affine(img), meta or {})
