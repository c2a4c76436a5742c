"""A stand-in for the segmentation's box voxels (``component_rules._Voxels``) in the edge-rule
tests: the box's vertebra ids, plain values as the depth-corrected intensities, and deep voxels."""

from __future__ import annotations

import numpy as np


class BoxVoxels:
    def __init__(self, vertebrae: np.ndarray, values: np.ndarray, deep: np.ndarray | None) -> None:
        self.vertebrae, self.values, self.shape, self.deep = vertebrae, values, vertebrae.shape, deep

    def corrected(self, idx: np.ndarray) -> np.ndarray:
        return np.asarray(self.values.ravel()[idx], dtype=np.float64)

    def vertebra(self, idx: np.ndarray) -> np.ndarray:
        return np.asarray(self.vertebrae.ravel()[idx])
