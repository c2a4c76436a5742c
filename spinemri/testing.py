"""Test helpers: :func:`assert_volume_equal` and hypothesis strategies for affines and volumes.

hypothesis is a test dependency only: it is imported inside the strategy
functions, so ``import spinemri.testing`` works without it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from .volume import Volume

__all__ = ["assert_volume_equal", "rotation_matrix", "affines", "volumes", "label_volumes"]


def assert_volume_equal(
    actual: Volume,
    expected: Volume,
    *,
    affine_atol: float = 0.0,
    check_dtype: bool = True,
    check_meta: bool = False,
) -> None:
    """Assert two Volumes hold the same voxels on the same grid.

    Parameters
    ----------
    actual, expected : Volume
    affine_atol : float, default 0.0
        Absolute tolerance on every affine entry (mm for the translation,
        mm per voxel for the 3x3 part); 0 demands bit-for-bit equality.
    check_dtype : bool, default True
        Also require the same data dtype.
    check_meta : bool, default False
        Also require equal metadata.

    Raises
    ------
    AssertionError
        Naming the first difference found.
    """
    if not isinstance(actual, Volume) or not isinstance(expected, Volume):
        raise AssertionError(
            f"expected two Volumes, got {type(actual).__name__} and {type(expected).__name__}"
        )
    if actual.shape != expected.shape:
        raise AssertionError(f"shapes differ: {actual.shape} != {expected.shape}")
    if check_dtype and actual.data.dtype != expected.data.dtype:
        raise AssertionError(f"dtypes differ: {actual.data.dtype} != {expected.data.dtype}")
    np.testing.assert_array_equal(actual.data, expected.data, err_msg="voxel values differ")
    if affine_atol == 0.0:
        np.testing.assert_array_equal(actual.affine, expected.affine, err_msg="affines differ")
    else:
        np.testing.assert_allclose(
            actual.affine, expected.affine, rtol=0.0, atol=affine_atol, err_msg="affines differ"
        )
    if check_meta and dict(actual.meta) != dict(expected.meta):
        raise AssertionError(f"meta differ: {dict(actual.meta)} != {dict(expected.meta)}")


def rotation_matrix(angles_rad: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """A 3x3 rotation: about x, then y, then z, by the three angles (radians).

    Parameters
    ----------
    angles_rad : array-like of shape (3,)
        Rotation angles about the x, y and z axes, in radians.

    Returns
    -------
    ndarray of shape (3, 3), float64
        The orthogonal matrix ``Rz @ Ry @ Rx`` (determinant +1).
    """
    a, b, c = (float(x) for x in np.asarray(angles_rad, dtype=np.float64))
    rx = np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]])
    ry = np.array([[np.cos(b), 0, np.sin(b)], [0, 1, 0], [-np.sin(b), 0, np.cos(b)]])
    rz = np.array([[np.cos(c), -np.sin(c), 0], [np.sin(c), np.cos(c), 0], [0, 0, 1]])
    r: npt.NDArray[np.float64] = rz @ ry @ rx
    return r


def affines(*, oblique: bool = True, float32_exact: bool = False) -> Any:
    """Hypothesis strategy of valid voxel-to-RAS affines.

    A signed axis permutation (every orientation a scanner writes: sagittal
    PSR, axial LAS, ...), optionally followed by a rotation of up to 0.3 rad
    per axis, scaled by voxel sizes of 0.1-8 mm, with an origin within
    ±500 mm.

    Parameters
    ----------
    oblique : bool, default True
        Include small rotations (oblique acquisitions).
    float32_exact : bool, default False
        Round every entry to float32 (what a NIfTI-1 header can store), for
        exact file round trips.

    Returns
    -------
    hypothesis SearchStrategy
        Draws float64 ndarrays of shape (4, 4): voxel index (i, j, k, 1) to
        world (x, y, z, 1) RAS+ mm, last row ``[0, 0, 0, 1]``.
    """
    from hypothesis import strategies as st

    def build(
        perm: tuple[int, ...], signs: list[int], angles: list[float], sizes: list[float], origin: list[float]
    ) -> np.ndarray:
        m = np.zeros((3, 3))
        for col, (row, sign) in enumerate(zip(perm, signs, strict=True)):
            m[row, col] = sign
        if oblique:
            m = rotation_matrix(angles) @ m
        a = np.eye(4)
        a[:3, :3] = m * np.asarray(sizes)
        a[:3, 3] = origin
        if float32_exact:
            a = a.astype(np.float32).astype(np.float64)
        return a

    size = st.floats(0.1, 8.0, allow_nan=False, allow_infinity=False)
    coord = st.floats(-500.0, 500.0, allow_nan=False, allow_infinity=False)
    angle = st.floats(-0.3, 0.3, allow_nan=False, allow_infinity=False)
    return st.builds(
        build,
        st.permutations([0, 1, 2]).map(tuple),
        st.lists(st.sampled_from([-1, 1]), min_size=3, max_size=3),
        st.lists(angle, min_size=3, max_size=3),
        st.lists(size, min_size=3, max_size=3),
        st.lists(coord, min_size=3, max_size=3),
    )


_DTYPES = ("uint8", "int16", "uint16", "int32", "float32", "float64")


def volumes(
    *,
    max_side: int = 6,
    dtypes: tuple[str, ...] = _DTYPES,
    oblique: bool = True,
    float32_exact: bool = False,
) -> Any:
    """Hypothesis strategy of small Volumes (each side 1..``max_side``) with random finite data.

    Parameters
    ----------
    max_side : int, default 6
        Largest number of voxels along each array axis (the smallest is 1).
    dtypes : tuple of str, default ("uint8", "int16", "uint16", "int32", "float32", "float64")
        Data dtypes to draw from; integer data span the dtype's whole range,
        float data lie in [-1e6, 1e6] (no NaN or inf).
    oblique : bool, default True
        Include small rotations in the affine (see :func:`affines`).
    float32_exact : bool, default False
        Round every affine entry to float32 (see :func:`affines`).

    Returns
    -------
    hypothesis SearchStrategy
        Draws :class:`~spinemri.volume.Volume` objects of shape (I, J, K)
        with an affine from :func:`affines`.
    """
    from hypothesis import strategies as st
    from hypothesis.extra import numpy as hnp

    @st.composite
    def build(draw: Any) -> Volume:
        shape = tuple(draw(st.lists(st.integers(1, max_side), min_size=3, max_size=3)))
        dtype = np.dtype(draw(st.sampled_from(dtypes)))
        if np.issubdtype(dtype, np.floating):
            elements = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False, width=dtype.itemsize * 8)
        else:
            info = np.iinfo(dtype)
            elements = st.integers(int(info.min), int(info.max))
        data = draw(hnp.arrays(dtype, shape, elements=elements))
        affine = draw(affines(oblique=oblique, float32_exact=float32_exact))
        return Volume(data, affine)

    return build()


def label_volumes(*, max_side: int = 6, max_label: int = 30, oblique: bool = True) -> Any:
    """Hypothesis strategy of small uint8 label Volumes (labels 0..``max_label``).

    Parameters
    ----------
    max_side : int, default 6
        Largest number of voxels along each array axis (the smallest is 1).
    max_label : int, default 30
        Largest label value; labels are drawn from 0 (background) to
        ``max_label``.
    oblique : bool, default True
        Include small rotations in the affine (see :func:`affines`).

    Returns
    -------
    hypothesis SearchStrategy
        Draws :class:`~spinemri.volume.Volume` objects of shape (I, J, K)
        with uint8 data and an affine from :func:`affines` (not
        float32-rounded).
    """
    from hypothesis import strategies as st
    from hypothesis.extra import numpy as hnp

    @st.composite
    def build(draw: Any) -> Volume:
        shape = tuple(draw(st.lists(st.integers(1, max_side), min_size=3, max_size=3)))
        data = draw(hnp.arrays(np.uint8, shape, elements=st.integers(0, max_label)))
        return Volume(data, draw(affines(oblique=oblique)))

    return build()
