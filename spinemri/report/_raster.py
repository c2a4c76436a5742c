"""Raster helpers shared by the QC picture, the QC sheet and the case viewer (Pillow, numpy).

Not public API: the names are public only so that the report modules may share them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

import numpy as np

if TYPE_CHECKING:
    from numpy.typing import NDArray


class LabelLookup:
    """Vertebra ids ``lut[labels]`` of a whole mask, looked up only where indexed.

    The renderers read the vertebra ids one slice at a time; this gives them those slices from
    the label mask the case holds anyway, instead of a full-size id volume (the mask's size:
    0.5x a 16-bit image). ``lookup[key]`` is ``lut[labels[key]]``, the same values (and dtype) as
    ``vertebra_ids(labels, ...)[0][key]`` when ``lut`` is that function's table.
    """

    def __init__(self, labels: np.ndarray, lut: np.ndarray) -> None:
        self.labels = labels
        self.lut = lut

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.labels.shape)

    @property
    def dtype(self) -> np.dtype[Any]:
        return self.lut.dtype

    def __getitem__(self, key: Any) -> np.ndarray:
        out: np.ndarray = self.lut[self.labels[key]]
        return out


def as_ids(data: np.ndarray | LabelLookup) -> np.ndarray | LabelLookup:
    """``data`` itself when a :class:`LabelLookup`, else ``np.asarray(data)``."""
    return data if isinstance(data, LabelLookup) else np.asarray(data)


def cut_slice(
    data: np.ndarray | LabelLookup, view: tuple[tuple[slice | int, ...], int, int, bool, bool]
) -> np.ndarray:
    slicer, row_axis, col_axis, flip_rows, flip_cols = view
    arr = as_ids(data)[slicer]
    if row_axis > col_axis:
        arr = arr.T
    if flip_rows:
        arr = arr[::-1, :]
    if flip_cols:
        arr = arr[:, ::-1]
    return arr


def blend(rgb: np.ndarray, where: np.ndarray, colour: tuple[int, int, int], alpha: float) -> None:
    """``rgb[where] = round((1 - alpha) * rgb + alpha * colour)``, in place, on the selected pixels only."""
    sel = rgb[where].astype(np.float32)
    rgb[where] = np.rint(sel * (1.0 - alpha) + np.float32(alpha) * np.asarray(colour, np.float32)).astype(
        np.uint8
    )


def axis_slice(data: np.ndarray | LabelLookup, axis: int, index: int) -> np.ndarray:
    """``data``'s slice ``index`` along ``axis``: a view (``np.take`` copies a non-C-ordered array whole)."""
    return as_ids(data)[(slice(None),) * axis + (int(index),)]


def slice_counts(vert: np.ndarray | LabelLookup, lr: int) -> NDArray[np.intp]:
    """Non-zero voxels of each slice along ``lr``, one slice at a time (no full-size temporary)."""
    n = as_ids(vert).shape[lr]
    return np.array([np.count_nonzero(axis_slice(vert, lr, s)) for s in range(n)], dtype=np.intp)


def centre_index(vert: np.ndarray | LabelLookup, lr: int, size: int) -> int:
    """The metrics' mid-sagittal rule (:func:`spinemri.metrics.mid_sagittal_index`), all vertebrae at once."""
    from ..metrics import mid_sagittal_index

    counts = slice_counts(vert, lr)  # vertebra voxels per slice along lr
    total = int(counts.sum())
    if total == 0:
        return size // 2
    index_sum = float(np.dot(np.arange(counts.size), counts))
    return int(mid_sagittal_index(np.array([index_sum]), np.array([float(total)]))[0])


def grey(values: np.ndarray, lo: float, hi: float) -> NDArray[np.uint8]:
    """``(clip((values - lo) / (hi - lo), 0, 1) * 255 + 0.5).astype(uint8)``, in place on one float64 copy.

    The same float64 operations in the same order as the expression (so the same bytes), on a
    single float64 copy of ``values`` instead of one temporary per operation.
    """
    x = np.array(values, dtype=np.float64)
    x -= lo
    x /= hi - lo
    np.clip(x, 0.0, 1.0, out=x)
    x *= 255.0
    x += 0.5
    return x.astype(np.uint8)


def slice_window(a: np.ndarray) -> tuple[float, float]:
    """The 1st and 99.5th percentiles of a slice (``hi`` raised to ``lo + 1`` when not above ``lo``)."""
    a = np.asarray(a)
    lo, hi = _percentiles(np.array(a), [1.0, 99.5])  # a scratch copy in the slice's dtype
    return float(lo), float(hi if hi > lo else lo + 1.0)


def window_slice(a: np.ndarray) -> NDArray[np.uint8]:
    """Grey levels 0-255 of a slice windowed to its 1st-99.5th percentiles."""
    a = np.asarray(a)
    if a.size == 0:
        return np.zeros(a.shape, dtype=np.uint8)
    lo, hi = slice_window(a)
    return grey(a, lo, hi)


def outline(labels: np.ndarray) -> NDArray[np.bool_]:
    """Boundary pixels of every label > 0: a 4-neighbour (or the picture's edge) carries another label."""
    padded = np.pad(labels, 1, mode="edge")
    edge = padded[:-2, 1:-1] != labels  # the four neighbours OR-ed in place: one comparison alive at a time
    edge |= padded[2:, 1:-1] != labels
    edge |= padded[1:-1, :-2] != labels
    edge |= padded[1:-1, 2:] != labels
    edge &= labels > 0
    return cast("NDArray[np.bool_]", edge)


def round_length(mm: float) -> float:
    """The largest of 1, 2, 5 x 10^k not above ``mm`` (at least 1 mm)."""
    if mm <= 1.0:
        return 1.0
    k = 10.0 ** np.floor(np.log10(mm))
    for m in (5.0, 2.0, 1.0):
        if m * k <= mm:
            return float(m * k)
    return float(k)


def load_font(size: int) -> Any:
    """Pillow's built-in scalable font at ``size`` pixels (its bitmap font where FreeType is missing)."""
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)
    except Exception:  # Pillow built without FreeType
        return ImageFont.load_default()


def c_order_subsample(data: np.ndarray, step: int) -> np.ndarray:
    """``data.ravel()[::step]`` (C order), always a new array, without a C-ordered copy of ``data``.

    Gathered slab by slab along axis 0, so a Fortran-ordered volume (NIfTI) is never
    copied whole; the values and their order are those of ``ravel()[::step]``.
    """
    arr = np.asarray(data)
    if arr.ndim < 2 or arr.flags.c_contiguous:
        return np.array(arr.reshape(-1)[::step])
    slab = arr[0].size
    out = np.empty(-(-arr.size // step), dtype=arr.dtype)
    at = 0
    for a in range(arr.shape[0]):
        first = (-a * slab) % step  # first multiple of step at or after this slab's start
        if first < slab:
            part = arr[a].ravel()[first::step]
            out[at : at + part.size] = part
            at += part.size
    return out


def _percentiles(sub: np.ndarray, q: list[float]) -> NDArray[np.float64]:
    """``np.percentile(sub.astype(np.float64), q)``, bit for bit, without the float64 copy of integer data.

    ``sub`` is a scratch array (partitioned in place). Numpy's linear rule takes the two
    neighbouring order statistics ``a <= b`` and computes ``b - a`` in the array's dtype
    before promoting to float64; an unsigned ``b - a`` cannot wrap, a signed one cannot when
    the data's range fits the dtype, and every value up to 32 bits is exact in float64: the
    result is the float64 one. Otherwise (floats, a range that would overflow) float64.
    """
    if sub.dtype.kind == "u" and sub.dtype.itemsize <= 4 and sub.size:
        return np.asarray(np.percentile(sub, q, overwrite_input=True), dtype=np.float64)
    if sub.dtype.kind == "i" and sub.dtype.itemsize <= 4 and sub.size:
        if int(sub.max()) - int(sub.min()) <= np.iinfo(sub.dtype).max:
            return np.asarray(np.percentile(sub, q, overwrite_input=True), dtype=np.float64)
    return np.asarray(np.percentile(sub.astype(np.float64), q, overwrite_input=True), dtype=np.float64)


def volume_window(data: np.ndarray) -> tuple[float, float]:
    """1st and 99.5th percentiles of (a subsample of) the whole volume: one window for every slice.

    The subsample is every ``size // 1e6``-th voxel in C order, taken slab by slab in the
    image's dtype (:func:`c_order_subsample`); no full-size or float64 copy of the volume.
    """
    arr = np.asarray(data)
    step = max(1, arr.size // 1_000_000)
    lo, hi = _percentiles(c_order_subsample(arr, step), [1.0, 99.5])
    return float(lo), float(hi if hi > lo else lo + 1.0)


def levels_text(value: Any) -> str:
    """``involved_levels`` for a title: the levels, or ``none`` (an empty CSV cell reads as NaN)."""
    return value if isinstance(value, str) and value else "none"
