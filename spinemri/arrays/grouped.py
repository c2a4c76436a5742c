"""Grouped statistics of values by integer group ids: sorts, exact medians, MADs, means, quantiles.

Pure numpy. Integer-valued (or half-integer) data, the usual MR and CT case,
go through one per-group histogram (:class:`Hist`, one ``np.bincount``);
other data through one sort (:func:`grouped_sort`). The medians are exact, as
:func:`numpy.median` defines them.
"""

from __future__ import annotations

from typing import NamedTuple, cast

import numpy as np

__all__ = [
    "MAX_HISTOGRAM_BINS",
    "Hist",
    "histograms",
    "hist_median_mad",
    "grouped_sort",
    "grouped_medians",
    "grouped_median_mad",
    "grouped_mean_median",
    "grouped_quantile",
    "nanmedian_axis",
]


def grouped_sort(
    values: np.ndarray, groups: np.ndarray, n_groups: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sort ``values`` by ``(group, value)``: one value sort plus one stable integer sort.

    The value sort is numpy's default (not stable: values that compare equal may come out in any
    order, which changes nothing but the sign of a zero among ``-0.0`` and ``0.0``); the group sort
    is stable, a radix sort for up to 65536 groups.

    Parameters
    ----------
    values : ndarray, shape (N,)
        Values to sort.
    groups : ndarray of int, shape (N,)
        Group id of each value, ``0 <= groups < n_groups``.
    n_groups : int
        Number of groups.

    Returns
    -------
    sorted_values : ndarray, shape (N,)
        Group ``g``'s values, ascending, are ``sorted_values[starts[g]:starts[g] + counts[g]]``.
    starts : ndarray of int64, shape (n_groups,)
        Start of each group in ``sorted_values``.
    counts : ndarray of int64, shape (n_groups,)
        Number of values of each group.
    """
    # the values by value (the default sort: equal values are interchangeable in the result, so
    # stability is not needed), then by group with a stable sort, as a radix sort on a small
    # unsigned copy of the ids when they fit in 16 bits (numpy sorts 8/16-bit integers by radix)
    order = np.argsort(values)
    g_sorted = groups[order]
    if n_groups <= 1 << 16:
        g_sorted = g_sorted.astype(np.uint8 if n_groups <= 1 << 8 else np.uint16)
    order2 = np.argsort(g_sorted, kind="stable")
    sorted_values = values[order[order2]]
    counts = np.bincount(groups, minlength=n_groups)[:n_groups]
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
    return sorted_values, starts, counts


def _sorted_median(a: np.ndarray, start: int, n: int) -> float:
    if n == 0:
        return float("nan")
    return float((a[start + (n - 1) // 2] + a[start + n // 2]) / 2.0)


#: Largest histogram (groups x intensity bins) used for exact medians of integer-valued data.
MAX_HISTOGRAM_BINS = 1 << 25


class Hist(NamedTuple):
    """Per-group histograms of (half-)integer values: ``value = lo + bin / scale`` exactly.

    Built by :func:`histograms` (or by a compiled kernel with the same layout);
    its methods give exact per-group statistics without a pass over the values.

    Attributes
    ----------
    counts : ndarray of int64, shape (n_groups, nbins)
        Number of values of each group in each bin.
    lo : float
        The value of bin 0.
    scale : float
        Bins per intensity unit: 1 (integers) or 2 (half-integers).
    """

    counts: np.ndarray  # (n_groups, nbins) int64 (int32 from the segmentation's class histogram)
    lo: float
    scale: float  # 1 or 2

    def pooled(self) -> Hist:
        """One histogram of all groups together.

        Returns
        -------
        Hist
            ``counts`` of shape (1, nbins), the sum over the groups.
        """
        return Hist(self.counts.sum(axis=0, keepdims=True), self.lo, self.scale)

    def bin_values(self) -> np.ndarray:
        """The value of each bin, exactly.

        Returns
        -------
        ndarray of float64, shape (nbins,)
            ``lo + bin / scale``.
        """
        return self.lo + np.arange(self.counts.shape[1]) / self.scale

    def mean(self) -> np.ndarray:
        """Mean of each group: ``sum(count_b · value_b) / n``.

        The exact sum of the values as long as it stays below 2**53, as a float64
        running sum is.

        Returns
        -------
        ndarray of float64, shape (n_groups,)
            NaN for an empty group.
        """
        with np.errstate(invalid="ignore", divide="ignore"):
            return cast(np.ndarray, (self.counts @ self.bin_values()) / self.counts.sum(axis=1))

    def medians(self) -> np.ndarray:
        """Exact median of each group, as :func:`numpy.median` defines it.

        Returns
        -------
        ndarray of float64, shape (n_groups,)
            NaN for an empty group.
        """
        return self.lo + _hist_double_medians(self.counts) / (2.0 * self.scale)


def histograms(values: np.ndarray, groups: np.ndarray, n_groups: int) -> Hist | None:
    """Per-group histograms (one ``np.bincount``) of (half-)integer values, when they fit.

    Parameters
    ----------
    values : ndarray, shape (N,)
        Integer values, or float values that are all integers or all half-integers.
    groups : ndarray of int, shape (N,)
        Group id of each value, ``0 <= groups < n_groups``.
    n_groups : int
        Number of groups.

    Returns
    -------
    Hist or None
        The histograms; None when ``values`` is empty, is not (half-)integer,
        or spans a range too wide for ``n_groups`` histograms of at most
        ``MAX_HISTOGRAM_BINS`` bins in all (the caller sorts instead).
    """
    if values.size == 0:
        return None
    lo, hi = values.min(), values.max()
    if np.issubdtype(values.dtype, np.integer):  # no check needed
        span = int(hi) - int(lo)
        if span * n_groups > MAX_HISTOGRAM_BINS:
            return None
        units, nbins, lo_f, scale = np.subtract(values, int(lo), dtype=np.intp), span + 1, float(lo), 1.0
    else:
        lo_f, hi_f = float(lo), float(hi)
        for scale in (1.0, 2.0):
            fspan = (hi_f - lo_f) * scale
            if fspan * n_groups > MAX_HISTOGRAM_BINS:
                return None
            scaled = (values - lo_f) * scale
            units = scaled.astype(np.intp)
            if np.array_equal(units, scaled):
                nbins = int(fspan) + 1
                break
        else:
            return None
    if n_groups == 1:
        counts = np.bincount(units, minlength=nbins).reshape(1, nbins)
    else:
        key = np.asarray(groups).astype(np.intp) * nbins + units
        counts = np.bincount(key, minlength=n_groups * nbins).reshape(n_groups, nbins)
    return Hist(counts, lo_f, scale)


def _hist_double_medians(hist: np.ndarray) -> np.ndarray:
    """Twice the median bin of each row of a histogram (``a + b``, the two middle order statistics'
    bins; float, NaN for an empty row), as :func:`numpy.median` defines the median."""
    cum = np.cumsum(hist, axis=1, dtype=np.int64)
    n_rows, nbins = cum.shape
    counts = cum[:, -1].copy() if nbins else np.zeros(n_rows, dtype=np.int64)
    # the bin of the m-th smallest value (0-based) is the number of bins whose running count is <= m,
    # i.e. np.searchsorted(cum[g], m + 1), for all rows at once: each row's running counts lifted by
    # row·(largest count + 1) make one ascending array, searched once for every row's targets
    rows = np.arange(n_rows, dtype=np.int64)
    lift = rows * (int(counts.max(initial=0)) + 1)
    cum += lift[:, None]  # (in place: no second array of the histogram's size)
    flat = cum.ravel()
    a = np.searchsorted(flat, (counts - 1) // 2 + 1 + lift) - rows * nbins  # the ((n-1)//2)-th smallest
    b = np.searchsorted(flat, counts // 2 + 1 + lift) - rows * nbins  # the (n//2)-th smallest
    return np.where(counts > 0, (a + b).astype(np.float64), np.nan)


def hist_median_mad(h: Hist) -> tuple[np.ndarray, np.ndarray]:
    """Per-group median and median absolute deviation from histograms.

    The deviation of bin ``b`` from a median at ``m2 / 2`` bins is ``|2b - m2| / 2``
    bins; the deviations' own histogram (in half bins, weighted by the counts)
    gives the MAD without a pass over the values again.

    Parameters
    ----------
    h : Hist
        Per-group histograms (:func:`histograms`).

    Returns
    -------
    median : ndarray of float64, shape (n_groups,)
        Exact median of each group (NaN when empty).
    mad : ndarray of float64, shape (n_groups,)
        Exact median absolute deviation from it (NaN when empty).
    """
    m2 = _hist_double_medians(h.counts)
    mad = np.full(h.counts.shape[0], np.nan)
    for g in np.flatnonzero(np.isfinite(m2)):
        b = np.flatnonzero(h.counts[g])
        d2 = np.abs(2 * b - int(m2[g]))
        dev_hist = np.bincount(d2, weights=h.counts[g, b], minlength=int(d2.max()) + 1)
        mad[g] = _hist_double_medians(dev_hist.reshape(1, -1))[0] / (4.0 * h.scale)
    return h.lo + m2 / (2.0 * h.scale), mad


def grouped_medians(values: np.ndarray, groups: np.ndarray, n_groups: int) -> np.ndarray:
    """Exact per-group medians, as :func:`numpy.median` defines them.

    Integer-valued (or half-integer) data, the usual MR and CT case, go through
    one per-group histogram (``np.bincount``); other data through one sort.

    Parameters
    ----------
    values : ndarray, shape (N,)
        Values (any numeric dtype; non-integer types are read as float64).
    groups : ndarray of int, shape (N,)
        Group id of each value, ``0 <= groups < n_groups``.
    n_groups : int
        Number of groups.

    Returns
    -------
    ndarray of float64, shape (n_groups,)
        The median of each group (NaN for an empty group).
    """
    values = _numeric(values)
    h = histograms(values, groups, n_groups)
    if h is not None:
        return h.medians()
    s, starts, counts = grouped_sort(values.astype(np.float64, copy=False), groups, n_groups)
    return np.array([_sorted_median(s, int(a), int(n)) for a, n in zip(starts, counts, strict=True)])


def grouped_median_mad(
    values: np.ndarray, groups: np.ndarray, n_groups: int
) -> tuple[np.ndarray, np.ndarray]:
    """Exact per-group median and median absolute deviation.

    As ``grouped_medians(values)`` and ``grouped_medians(|values - median|)``;
    for (half-)integer data from one histogram pass over the values.

    Parameters
    ----------
    values : ndarray, shape (N,)
        Values (any numeric dtype; non-integer types are read as float64).
    groups : ndarray of int, shape (N,)
        Group id of each value, ``0 <= groups < n_groups``.
    n_groups : int
        Number of groups.

    Returns
    -------
    median, mad : ndarray of float64, shape (n_groups,)
        Per group (NaN for an empty group).
    """
    values = _numeric(values)
    h = histograms(values, groups, n_groups)
    if h is not None:
        return hist_median_mad(h)
    med = grouped_medians(values, groups, n_groups)
    return med, grouped_medians(np.abs(values - med[groups]), groups, n_groups)


def grouped_mean_median(
    values: np.ndarray, groups: np.ndarray, n_groups: int
) -> tuple[np.ndarray, np.ndarray]:
    """Per-group mean and exact median; one histogram for (half-)integer data (:meth:`Hist.mean`).

    Parameters
    ----------
    values : ndarray, shape (N,)
        Values (any numeric dtype; non-integer types are read as float64).
    groups : ndarray of int, shape (N,)
        Group id of each value, ``0 <= groups < n_groups``.
    n_groups : int
        Number of groups.

    Returns
    -------
    mean, median : ndarray of float64, shape (n_groups,)
        Per group (NaN for an empty group).
    """
    values = _numeric(values)
    h = histograms(values, groups, n_groups)
    if h is not None:
        return h.mean(), h.medians()
    count = np.bincount(groups, minlength=n_groups)[:n_groups].astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.bincount(groups, weights=values, minlength=n_groups)[:n_groups] / count
    return mean, grouped_medians(values, groups, n_groups)


def _numeric(values: np.ndarray) -> np.ndarray:
    values = np.asarray(values)
    if not (np.issubdtype(values.dtype, np.integer) or values.dtype == np.float64):
        values = values.astype(np.float64)
    return values


def grouped_quantile(values: np.ndarray, groups: np.ndarray, n_groups: int, q: float) -> np.ndarray:
    """Per-group ``q`` quantile, ``method="lower"`` of :func:`numpy.quantile`.

    Parameters
    ----------
    values : ndarray, shape (N,)
        Values (any numeric dtype; non-integer types are read as float64).
    groups : ndarray of int, shape (N,)
        Group id of each value, ``0 <= groups < n_groups``.
    n_groups : int
        Number of groups.
    q : float
        Quantile, in [0, 1].

    Returns
    -------
    ndarray of float64, shape (n_groups,)
        The quantile of each group (NaN for an empty group).
    """
    s, starts, counts = grouped_sort(np.asarray(values, dtype=np.float64), groups, n_groups)
    out = np.full(n_groups, np.nan)
    ok = counts > 0
    pos = starts[ok] + np.floor(q * (counts[ok] - 1) + 1e-9).astype(np.int64)
    out[ok] = s[pos]
    return out


def nanmedian_axis(a: np.ndarray, axis: int) -> np.ndarray:
    """:func:`numpy.nanmedian` along one axis of a float array, by one sort (NaNs sort last).

    The median of each lane's finite values, as :func:`numpy.median` defines it (the mean of the
    two middle values); NaN for a lane without one. The same values as ``np.nanmedian(a, axis)``
    (which goes through masked arrays for small inputs: a thousand times slower on a 24 x 3 table),
    without its warning for an all-NaN lane.

    Parameters
    ----------
    a : ndarray of float
        The values (NaN: missing).
    axis : int
        The axis to reduce.

    Returns
    -------
    ndarray of float64
        ``a``'s shape without ``axis``.
    """
    s = np.sort(np.asarray(a, dtype=np.float64), axis=axis)
    s = np.moveaxis(s, axis, -1)
    if s.shape[-1] == 0:
        return np.full(s.shape[:-1], np.nan)
    n = np.count_nonzero(~np.isnan(s), axis=-1)
    lo = np.take_along_axis(s, np.maximum((n - 1) // 2, 0)[..., None], axis=-1)[..., 0]
    hi = np.take_along_axis(s, np.minimum(n // 2, s.shape[-1] - 1)[..., None], axis=-1)[..., 0]
    return np.where(n > 0, (lo + hi) / 2.0, np.nan)
