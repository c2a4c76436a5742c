"""The frame columns of one measured case: what the pipeline adds to vertebrae.csv and lesions.csv.

Pure (a :class:`~spinemri.measurement.Measurement` and its mask in, tables out), no I/O. The
pipeline calls :func:`frame_tables` after :func:`spinemri.measure` and writes the returned tables
in place of ``Measurement.vertebrae`` / ``.lesions``: the same rows and columns, plus the
:data:`~spinemri.surveillance.frames.FRAME_COLUMNS` on the vertebrae and the
:data:`~spinemri.surveillance.frames.POSITION_COLUMNS` on the lesions (added columns: no existing
column changes).
"""

from __future__ import annotations

import pandas as pd

from ..arrays.labels import check_label_values
from ..measurement import Measurement, vertebra_ids
from ..volume import Volume
from .frames import FRAME_COLUMNS, lesion_positions, vertebra_frames

__all__ = ["frame_tables"]


def frame_tables(measurement: Measurement, mask: Volume) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Vertebra and lesion tables of a measured case with their frame and position columns.

    Parameters
    ----------
    measurement : Measurement
        :func:`spinemri.measure` of ``image`` and ``mask``.
    mask : Volume
        The vertebral mask it was measured with (same grid as the image).

    Returns
    -------
    vertebrae : pandas.DataFrame
        ``measurement.vertebrae`` with the frame columns (NaN for a level without voxels).
    lesions : pandas.DataFrame
        ``measurement.lesions`` with the position columns (from the lesions' world centroids).

    Examples
    --------
    >>> import numpy as np, spinemri
    >>> img = np.full((8, 8, 8), 100.0); img[3:5, 3:5, 3:5] = 400.0
    >>> lab = np.zeros((8, 8, 8), np.uint8); lab[1:7, 1:7, 1:7] = 20   # VerSe 20 = L1
    >>> mask = spinemri.Volume(lab, np.eye(4))
    >>> image = spinemri.Volume(img, np.eye(4))
    >>> m = spinemri.measure(image, mask, scheme="verse", min_lesion_mm3=0, margin_mm=0)
    >>> v, les = frame_tables(m, mask)
    >>> float(v["height_mm"].iloc[0]), [float(les[c].iloc[0]) for c in ("rel_si", "rel_ap", "rel_lr")]
    (6.0, [0.0, 0.0, 0.0])
    """
    labels = check_label_values(mask.data, str(mask.meta.get("source", "mask")))
    mapped, _ = measurement.scheme.split_labels(pd.unique(labels.ravel()).tolist())
    vid, levels, _ = vertebra_ids(labels, mapped)
    frames = vertebra_frames(vid, levels, mask.affine)
    vert = measurement.vertebrae.drop(columns=[c for c in FRAME_COLUMNS if c in measurement.vertebrae])
    vert = vert.merge(frames, on="level", how="left")
    lesions = lesion_positions(measurement.lesions, frames)
    return vert, lesions
