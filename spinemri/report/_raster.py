"""Raster helpers shared by the QC picture, the QC sheet and the case viewer (Pillow, numpy).

Not public API: the names are public only so that the report modules may share them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

import numpy as np

if TYPE_CHECKING:
    from numpy.typing import NDArray


def cut_slice(data: np.ndarray, view: tuple[tuple[slice | int, ...], int, int, bool, bool]) -> np.ndarray:
    slicer, row_axis, col_axis, flip_rows, flip_cols = view
    arr = np.asarray(data)[slicer]
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


def centre_index(vert: np.ndarray, lr: int, size: int) -> int:
    """The metrics' mid-sagittal rule (:func:`spinemri.metrics.mid_sagittal_index`), all vertebrae at once."""
    from ..metrics import mid_sagittal_index

    other = tuple(a for a in range(3) if a != lr)
    counts = np.count_nonzero(vert, axis=other)  # vertebra voxels per slice along lr
    total = int(counts.sum())
    if total == 0:
        return size // 2
    index_sum = float(np.dot(np.arange(counts.size), counts))
    return int(mid_sagittal_index(np.array([index_sum]), np.array([float(total)]))[0])


def window_slice(a: np.ndarray) -> NDArray[np.uint8]:
    """Grey levels 0-255 of a slice windowed to its 1st-99.5th percentiles."""
    a = np.asarray(a, dtype=np.float64)
    if a.size == 0:
        return np.zeros(a.shape, dtype=np.uint8)
    lo, hi = np.percentile(a, [1.0, 99.5])
    hi = hi if hi > lo else lo + 1.0
    return cast("NDArray[np.uint8]", (np.clip((a - lo) / (hi - lo), 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8))


def outline(labels: np.ndarray) -> NDArray[np.bool_]:
    """Boundary pixels of every label > 0: a 4-neighbour (or the picture's edge) carries another label."""
    padded = np.pad(labels, 1, mode="edge")
    return cast(
        "NDArray[np.bool_]",
        (labels > 0)
        & (
            (padded[:-2, 1:-1] != labels)
            | (padded[2:, 1:-1] != labels)
            | (padded[1:-1, :-2] != labels)
            | (padded[1:-1, 2:] != labels)
        ),
    )


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


def volume_window(data: np.ndarray) -> tuple[float, float]:
    """1st and 99.5th percentiles of (a subsample of) the whole volume: one window for every slice."""
    flat = np.asarray(data).ravel()
    step = max(1, flat.size // 1_000_000)
    lo, hi = np.percentile(flat[::step].astype(np.float64), [1.0, 99.5])
    return float(lo), float(hi if hi > lo else lo + 1.0)


def levels_text(value: Any) -> str:
    """``involved_levels`` for a title: the levels, or ``none`` (an empty CSV cell reads as NaN)."""
    return value if isinstance(value, str) and value else "none"
