# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Compiled kernels of the segmentation: fused passes over the vertebrae's bounding box.

Each kernel computes exactly what a numpy definition in :mod:`spinemri.segment`
computes (named in its docstring; the tests compare the two on random label
volumes), in fewer passes over memory. Arrays are C-contiguous; the caller
(:mod:`spinemri.segment`) converts once where needed.
"""

import numpy as np

cimport numpy as cnp

cnp.import_array()

# labels of the erosion (any id) and the vertebra ids the other kernels read (1..255)
ctypedef fused anylabel_t:
    cnp.uint8_t
    cnp.uint16_t
    cnp.uint32_t

ctypedef cnp.uint8_t label_t

# integer intensities (histograms) and any intensity (comparisons)
ctypedef fused value_t:
    cnp.uint8_t
    cnp.int8_t
    cnp.uint16_t
    cnp.int16_t
    cnp.uint32_t
    cnp.int32_t
    cnp.int64_t

ctypedef fused num_t:
    cnp.uint8_t
    cnp.int8_t
    cnp.uint16_t
    cnp.int16_t
    cnp.uint32_t
    cnp.int32_t
    cnp.int64_t
    double

#: bits of the code volume written by :func:`label_classes`
cdef enum:
    _CORE = 4
DEPTH_MASK = 3
CORE_BIT = _CORE


cdef void _erode_lines(const anylabel_t* src, anylabel_t* dst, Py_ssize_t n_lines, Py_ssize_t n, Py_ssize_t h) noexcept nogil:
    """Along contiguous lines of length n: dst[x] = src[x] when src[x - d] == src[x] == src[x + d]
    for d = 1..h (beyond the line: background), else 0."""
    cdef Py_ssize_t o, k, d, b
    cdef const anylabel_t* s
    cdef anylabel_t* t
    for o in range(n_lines):
        s = src + o * n
        t = dst + o * n
        if n <= 2 * h:
            for k in range(n):
                t[k] = 0
            continue
        for k in range(h):
            t[k] = 0
            t[n - 1 - k] = 0
        for k in range(h, n - h):
            t[k] = s[k]
        for d in range(1, h + 1):
            for k in range(h, n - h):
                t[k] = t[k] if ((s[k - d] == s[k]) & (s[k + d] == s[k])) else 0


cdef void _erode_planes(
    const anylabel_t* src, anylabel_t* dst, Py_ssize_t n_outer, Py_ssize_t n_axis, Py_ssize_t n_inner, Py_ssize_t h
) noexcept nogil:
    """As :func:`_erode_lines` along the middle axis of an (n_outer, n_axis, n_inner) array,
    a contiguous plane of n_inner voxels at a time."""
    cdef Py_ssize_t o, a, c, d
    cdef const anylabel_t* s
    cdef const anylabel_t* lo
    cdef const anylabel_t* hi
    cdef anylabel_t* t
    for o in range(n_outer):
        for a in range(n_axis):
            s = src + (o * n_axis + a) * n_inner
            t = dst + (o * n_axis + a) * n_inner
            if a < h or a >= n_axis - h:
                for c in range(n_inner):
                    t[c] = 0
                continue
            for c in range(n_inner):
                t[c] = s[c]
            for d in range(1, h + 1):
                lo = s - d * n_inner
                hi = s + d * n_inner
                for c in range(n_inner):
                    t[c] = t[c] if ((lo[c] == s[c]) & (hi[c] == s[c])) else 0


cdef anylabel_t* _erode_box(
    anylabel_t* a, anylabel_t* b, Py_ssize_t n0, Py_ssize_t n1, Py_ssize_t n2,
    Py_ssize_t h0, Py_ssize_t h1, Py_ssize_t h2,
) noexcept nogil:
    """Erode the labels in ``a`` by the box of half-widths (h0, h1, h2), ping-ponging with ``b``
    (separable: each axis erodes the previous result); returns the buffer holding the result."""
    cdef anylabel_t* tmp
    if h2 > 0:
        _erode_lines(a, b, n0 * n1, n2, h2)
        tmp = a; a = b; b = tmp
    if h1 > 0:
        _erode_planes(a, b, n0, n1, n2, h1)
        tmp = a; a = b; b = tmp
    if h0 > 0:
        _erode_planes(a, b, 1, n0, n1 * n2, h0)
        tmp = a; a = b; b = tmp
    return a


cdef void _depth_classes(const anylabel_t* L, cnp.uint8_t* code, Py_ssize_t n0, Py_ssize_t n1, Py_ssize_t n2) noexcept nogil:
    """code[x] = depth class of :func:`spinemri.segment.depth_classes` for label voxels (0-3),
    0 for background; voxels on the array's faces are class 0 (a face neighbour lies outside)."""
    cdef Py_ssize_t i, j, k, s0 = n1 * n2, s1 = n2
    cdef const anylabel_t* rmm
    cdef const anylabel_t* rm0
    cdef const anylabel_t* rmp
    cdef const anylabel_t* r0m
    cdef const anylabel_t* r00
    cdef const anylabel_t* r0p
    cdef const anylabel_t* rpm
    cdef const anylabel_t* rp0
    cdef const anylabel_t* rpp
    cdef cnp.uint8_t* out
    cdef anylabel_t o
    cdef int f, e, c
    for i in range(n0):
        for j in range(n1):
            out = code + i * s0 + j * s1
            if i == 0 or j == 0 or i == n0 - 1 or j == n1 - 1 or n2 < 3:
                for k in range(n2):
                    out[k] = 0
                continue
            r00 = L + i * s0 + j * s1
            r0m = r00 - s1
            r0p = r00 + s1
            rm0 = r00 - s0
            rp0 = r00 + s0
            rmm = rm0 - s1
            rmp = rm0 + s1
            rpm = rp0 - s1
            rpp = rp0 + s1
            out[0] = 0
            out[n2 - 1] = 0
            for k in range(1, n2 - 1):
                o = r00[k]
                f = ((r00[k - 1] != o) | (r00[k + 1] != o) | (r0m[k] != o) | (r0p[k] != o)
                     | (rm0[k] != o) | (rp0[k] != o))
                e = ((r0m[k - 1] != o) | (r0m[k + 1] != o) | (r0p[k - 1] != o) | (r0p[k + 1] != o)
                     | (rm0[k - 1] != o) | (rm0[k + 1] != o) | (rp0[k - 1] != o) | (rp0[k + 1] != o)
                     | (rmm[k] != o) | (rmp[k] != o) | (rpm[k] != o) | (rpp[k] != o))
                c = ((rmm[k - 1] != o) | (rmm[k + 1] != o) | (rmp[k - 1] != o) | (rmp[k + 1] != o)
                     | (rpm[k - 1] != o) | (rpm[k + 1] != o) | (rpp[k - 1] != o) | (rpp[k + 1] != o))
                e = e | f
                c = c | e
                out[k] = (3 - f - e - c) if o != 0 else 0


def label_classes(const anylabel_t[:, :, ::1] lab, Py_ssize_t h0, Py_ssize_t h1, Py_ssize_t h2, bint depth=True):
    """Per voxel of ``lab`` (labels, 0 = background; beyond the array is background) a uint8 code:
    bit 2 (``CORE_BIT``) set when the voxel is in the box erosion of its label by (h0, h1, h2)
    (``erode_labels_box(lab, (h0, h1, h2), border_is_boundary=True)``) and, with ``depth``, bits 0-1
    the depth class of :func:`spinemri.segment.depth_classes` (0 for background voxels)."""
    cdef Py_ssize_t n0 = lab.shape[0], n1 = lab.shape[1], n2 = lab.shape[2]
    cdef Py_ssize_t size = n0 * n1 * n2, x
    code_arr = np.empty((n0, n1, n2), dtype=np.uint8)
    if size == 0:
        return code_arr
    cdef cnp.uint8_t[:, :, ::1] code_v = code_arr
    cdef cnp.uint8_t* code = &code_v[0, 0, 0]
    cdef const anylabel_t* L = &lab[0, 0, 0]
    dt = np.asarray(lab).dtype
    work_arr = np.empty(size, dtype=dt)
    scratch_arr = np.empty(size, dtype=dt)
    cdef anylabel_t[::1] work_v = work_arr, scratch_v = scratch_arr
    cdef anylabel_t* W = &work_v[0]
    cdef anylabel_t* S = &scratch_v[0]
    cdef anylabel_t* R
    with nogil:
        if depth:
            _depth_classes(L, code, n0, n1, n2)
        else:
            for x in range(size):
                code[x] = 0
        for x in range(size):
            W[x] = L[x]
        R = _erode_box(W, S, n0, n1, n2, h0, h1, h2)
        for x in range(size):
            code[x] = code[x] | (_CORE if R[x] != 0 else 0)
    return code_arr


def class_histogram(
    const label_t[:, :, ::1] lab, const value_t[:, :, ::1] values, const cnp.uint8_t[:, :, ::1] code,
    cnp.int64_t lo, Py_ssize_t nbins, Py_ssize_t n_ids,
):
    """Histogram of ``values - lo`` per (label, ``code & 7``) over the labelled voxels:
    int64 array (n_ids + 1, 8, nbins). Labels must be <= n_ids and values in [lo, lo + nbins)."""
    hist_arr = np.zeros((n_ids + 1, 8, nbins), dtype=np.int64)
    cdef cnp.int64_t[:, :, ::1] hist = hist_arr
    cdef Py_ssize_t i, j, k, n0 = lab.shape[0], n1 = lab.shape[1], n2 = lab.shape[2]
    cdef label_t v
    with nogil:
        for i in range(n0):
            for j in range(n1):
                for k in range(n2):
                    v = lab[i, j, k]
                    if v != 0:
                        hist[v, code[i, j, k] & 7, <Py_ssize_t>(values[i, j, k] - lo)] += 1
    return hist_arr


def candidates(
    const label_t[:, :, ::1] lab, const num_t[:, :, ::1] values, const cnp.uint8_t[:, :, ::1] code,
    const double[::1] thr, const double[::1] seed_thr, bint bright, Py_ssize_t max_count,
):
    """Candidate voxels: labelled voxels strictly beyond their label's ``thr`` (above when
    ``bright``, else below; NaN: none). Returns their flat indices, ascending, and whether each is a
    seed (in the core, ``code & CORE_BIT``, and also beyond ``seed_thr``); ``max_count``: at least
    their number (e.g. the number of labelled voxels)."""
    cdef Py_ssize_t i, j, k, n0 = lab.shape[0], n1 = lab.shape[1], n2 = lab.shape[2], count = 0
    idx_arr = np.empty(max(max_count, 0), dtype=np.intp)
    seed_arr = np.empty(max(max_count, 0), dtype=np.bool_)
    cdef Py_ssize_t[::1] idx = idx_arr
    cdef cnp.npy_bool[::1] seed = seed_arr
    cdef label_t v
    cdef double x
    with nogil:
        for i in range(n0):
            for j in range(n1):
                for k in range(n2):
                    v = lab[i, j, k]
                    if v == 0:
                        continue
                    x = <double>values[i, j, k]
                    if ((x > thr[v]) if bright else (x < thr[v])) and count < max_count:
                        idx[count] = (i * n1 + j) * n2 + k
                        seed[count] = (code[i, j, k] & _CORE) != 0 and (
                            (x > seed_thr[v]) if bright else (x < seed_thr[v])
                        )
                        count += 1
    return idx_arr[:count].copy(), seed_arr[:count].copy()


def grow(
    const label_t[:, :, ::1] lab, const num_t[:, :, ::1] values, const cnp.uint8_t[:, :, ::1] code,
    const double[::1] offset, const Py_ssize_t[::1] idx, const double[::1] cut, double sign,
):
    """Flat indices of the 26-neighbours ``y`` of the voxels ``idx`` (inside the array) with the same
    label whose corrected value ``values[y] - offset[4·lab[y] + (code[y] & 3)]`` is beyond the
    ``cut`` of the voxel they neighbour (``(corrected - cut)·sign > 0``); unsorted, with repeats."""
    cdef Py_ssize_t n0 = lab.shape[0], n1 = lab.shape[1], n2 = lab.shape[2]
    cdef Py_ssize_t m = idx.shape[0], t, i, j, k, ii, jj, kk, x, nfound = 0
    cdef int di, dj, dk
    cdef label_t v, w
    cdef double corr
    out_arr = np.empty(26 * m, dtype=np.intp)
    cdef Py_ssize_t[::1] out = out_arr
    with nogil:
        for t in range(m):
            x = idx[t]
            i = x // (n1 * n2)
            j = (x // n2) % n1
            k = x % n2
            v = lab[i, j, k]
            for di in range(-1, 2):
                ii = i + di
                if ii < 0 or ii >= n0:
                    continue
                for dj in range(-1, 2):
                    jj = j + dj
                    if jj < 0 or jj >= n1:
                        continue
                    for dk in range(-1, 2):
                        kk = k + dk
                        if kk < 0 or kk >= n2 or (di == 0 and dj == 0 and dk == 0):
                            continue
                        w = lab[ii, jj, kk]
                        if w != v:
                            continue
                        corr = <double>values[ii, jj, kk] - offset[4 * <Py_ssize_t>w + (code[ii, jj, kk] & 3)]
                        if (corr - cut[t]) * sign > 0:
                            out[nfound] = (ii * n1 + jj) * n2 + kk
                            nfound += 1
    return out_arr[:nfound]


def vertebra_tables(
    const label_t[:, :, ::1] lab, const value_t[:, :, ::1] values, int lr_axis, Py_ssize_t n_ids,
    cnp.int64_t lo, Py_ssize_t nbins,
):
    """Voxel counts per (label, index along ``lr_axis``), int64 (n_ids + 1, shape[lr_axis]), and
    the histogram of ``values - lo`` per label, int64 (n_ids + 1, nbins) (``nbins`` 0: none)."""
    cdef Py_ssize_t n0 = lab.shape[0], n1 = lab.shape[1], n2 = lab.shape[2], i, j, k
    tab_arr = np.zeros((n_ids + 1, lab.shape[lr_axis]), dtype=np.int64)
    hist_arr = np.zeros((n_ids + 1, max(nbins, 1)), dtype=np.int64)
    cdef cnp.int64_t[:, ::1] tab = tab_arr, hist = hist_arr
    cdef label_t v
    cdef bint h = nbins > 0
    with nogil:
        for i in range(n0):
            for j in range(n1):
                for k in range(n2):
                    v = lab[i, j, k]
                    if v == 0:
                        continue
                    tab[v, i if lr_axis == 0 else (j if lr_axis == 1 else k)] += 1
                    if h:
                        hist[v, <Py_ssize_t>(values[i, j, k] - lo)] += 1
    return tab_arr, hist_arr[:, :nbins]
