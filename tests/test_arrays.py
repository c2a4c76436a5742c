"""spinemri.arrays against direct numpy definitions on random label volumes."""

from __future__ import annotations

import numpy as np
import pytest

from spinemri.arrays.bbox import nonzero_bbox
from spinemri.arrays.labels import label_counts_si


def _bbox_by_definition(a: np.ndarray) -> tuple[slice, ...] | None:
    idx = np.nonzero(a)
    if idx[0].size == 0:
        return None
    return tuple(slice(int(x.min()), int(x.max()) + 1) for x in idx)


@pytest.mark.parametrize(
    "dtype",
    [
        np.uint8,
        np.int8,
        np.int16,
        np.uint16,
        np.int32,
        np.uint32,
        np.int64,
        np.uint64,
        bool,
        np.float32,
        ">i2",
    ],
)
def test_nonzero_bbox_matches_definition(rng: np.random.Generator, dtype: type) -> None:
    for _ in range(300):
        shape = tuple(int(s) for s in rng.integers(1, 10, 2)) + (int(rng.choice([1, 3, 8, 16, 20, 24])),)
        a = (rng.random(shape) < rng.random() * 0.2).astype(dtype)
        if np.dtype(dtype).kind in "iu" and rng.random() < 0.5:
            a = a * np.array(-1 if np.dtype(dtype).kind == "i" else np.iinfo(dtype).max).astype(dtype)
        if rng.random() < 0.3:
            a = np.asfortranarray(a)
        assert nonzero_bbox(a) == _bbox_by_definition(a)


def test_label_counts_si_matches_definition(rng: np.random.Generator) -> None:
    for order in ("C", "F"):
        labels = np.zeros((20, 30, 12), np.uint16)
        labels[3:9, 4:20, 2:11] = rng.integers(0, 6, (6, 16, 9))
        labels[15, 29, 11] = 4000  # a sparse high label
        labels = np.asarray(labels, order=order)
        affine = np.array([[0.0, 0.7, 0.1, -5.0], [0.2, 0.0, 3.0, 2.0], [0.9, 0.1, -0.4, 40.0], [0, 0, 0, 1]])
        present, counts, si = label_counts_si(labels, affine)
        idx = np.nonzero(labels)
        z = affine[2, :3] @ np.array(idx) + affine[2, 3]
        vals = labels[idx]
        expect = np.unique(vals)
        np.testing.assert_array_equal(present, expect)
        np.testing.assert_array_equal(counts, [np.sum(vals == v) for v in expect])
        assert si is not None
        np.testing.assert_allclose(si, [z[vals == v].mean() for v in expect], rtol=0, atol=1e-9)
        assert label_counts_si(labels, affine, centroids=False)[2] is None
    empty = label_counts_si(np.zeros((3, 3, 3), np.uint8), np.eye(4))
    assert empty[0].size == 0 and empty[1].size == 0
