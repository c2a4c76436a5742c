# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Compiled kernels of the segmentation: fused passes over the vertebrae's bounding box.

Each kernel computes exactly what a numpy definition in :mod:`spinemri.segmentation.lesions`
computes (named in its docstring; the tests compare the two on random label
volumes), in fewer passes over memory. Arrays are C-contiguous; the caller
(:mod:`spinemri.segmentation.lesions`) converts once where needed.
"""

import numpy as np

cimport numpy as cnp
from libc.string cimport memcpy

cnp.import_array()

import sys as _sys

cdef extern from *:
    """
    static inline int spm_ctz64(unsigned long long x) { return __builtin_ctzll(x); }
    /* a hint to fetch the bytes p[0:n] into the cache (one prefetch per 64-byte line) */
    static inline void spm_prefetch(const void* p, Py_ssize_t n) {
        const char* c = (const char*)p;
        Py_ssize_t k;
        for (k = 0; k < n; k += 64) __builtin_prefetch(c + k);
        __builtin_prefetch(c + n - 1);
    }
    /* SPM_PORTABLE (a build with -DSPM_PORTABLE) takes the plain C paths everywhere: what a
       machine without SSE2 (ARM) or without target_clones runs; the tests compare the two builds */
    #if defined(__SSE2__) && !defined(SPM_PORTABLE)
    #define SPM_SSE2 1
    #include <emmintrin.h>
    #endif
    /* The bits of the bytes b[0:n] != 0 into the words w[0:nw] (bit k of word k / 64; the bits from
       n on zero; nw * 64 >= n): 16 bytes at a time by SSE2 where available (each full word stored
       once), the rest one by one. */
    #include <stdint.h>
    static inline void spm_pack_nonzero(const uint8_t* b, Py_ssize_t n, uint64_t* w, Py_ssize_t nw) {
        Py_ssize_t k = 0, i, nf = n >> 6;
        uint64_t acc;
        for (i = nf; i < nw; i++) w[i] = 0;
    #if defined(SPM_SSE2)
        const __m128i z = _mm_setzero_si128();
        for (i = 0; i < nf; i++, k += 64) {  /* a word from 4 x 16 bytes, stored once */
            uint64_t m0 = (uint64_t)_mm_movemask_epi8(_mm_cmpeq_epi8(_mm_loadu_si128((const __m128i*)(b + k)), z));
            uint64_t m1 = (uint64_t)_mm_movemask_epi8(_mm_cmpeq_epi8(_mm_loadu_si128((const __m128i*)(b + k + 16)), z));
            uint64_t m2 = (uint64_t)_mm_movemask_epi8(_mm_cmpeq_epi8(_mm_loadu_si128((const __m128i*)(b + k + 32)), z));
            uint64_t m3 = (uint64_t)_mm_movemask_epi8(_mm_cmpeq_epi8(_mm_loadu_si128((const __m128i*)(b + k + 48)), z));
            w[i] = ~(m0 | (m1 << 16) | (m2 << 32) | (m3 << 48));
        }
    #else
        for (i = 0; i < nf; i++, k += 64) {
            Py_ssize_t t;
            acc = 0;
            for (t = 0; t < 64; t++) acc |= (uint64_t)(b[k + t] != 0) << t;
            w[i] = acc;
        }
    #endif
        if (k < n) {  /* the last, partial word: 16 bytes a step, then one by one */
            acc = 0;
            i = 0;
    #if defined(SPM_SSE2)
            for (; k + i + 16 <= n; i += 16)
                acc |= (uint64_t)(_mm_movemask_epi8(_mm_cmpeq_epi8(
                    _mm_loadu_si128((const __m128i*)(b + k + i)), z)) ^ 0xFFFF) << i;
    #endif
            for (; k + i < n; i++) acc |= (uint64_t)(b[k + i] != 0) << i;
            w[nf] = acc;
        }
    }
    """
    int spm_ctz64(unsigned long long x) noexcept nogil
    void spm_prefetch(const void* p, Py_ssize_t n) noexcept nogil
    void spm_pack_nonzero(const cnp.uint8_t* b, Py_ssize_t n, cnp.uint64_t* w, Py_ssize_t nw) noexcept nogil

cdef bint _LITTLE = _sys.byteorder == "little"

# The erosion step and the depth classes of uint8 labels (the segmentation's vertebra ids) in C,
# compiled twice where the compiler can dispatch at load time (GCC / Clang on x86-64 Linux,
# ``target_clones``): for AVX2 and for the baseline, the loader picking the one the CPU runs. The
# loops are the Cython ones below (``_erode_step``, ``_depth_classes``) for one type; the baseline
# build only has SSE2, whose 16-byte lanes do half the work of AVX2's per instruction.
cdef extern from *:
    """
    #if defined(__GNUC__) && defined(__x86_64__) && defined(__linux__) && defined(__has_attribute) \
        && !defined(SPM_PORTABLE)
    #  if __has_attribute(target_clones)
    #    define SPM_CLONES __attribute__((target_clones("avx2", "default")))
    #  endif
    #endif
    #ifndef SPM_CLONES
    #  define SPM_CLONES
    #endif
    SPM_CLONES static void spm_erode_step_u8(
        const unsigned char* src, unsigned char* dst, Py_ssize_t total, Py_ssize_t shift)
    {
        Py_ssize_t x, lo = shift, hi = total - shift;
        if (hi <= lo) { for (x = 0; x < total; x++) dst[x] = 0; return; }
        for (x = 0; x < lo; x++) dst[x] = 0;
        for (x = hi; x < total; x++) dst[x] = 0;
        for (x = lo; x < hi; x++) {
            unsigned char o = src[x];
            dst[x] = ((src[x - shift] == o) & (src[x + shift] == o)) ? o : 0;
        }
    }
    SPM_CLONES static unsigned char spm_or_u8(const unsigned char* a, Py_ssize_t n)
    {
        unsigned char acc = 0;
        Py_ssize_t k;
        for (k = 0; k < n; k++) acc |= a[k];
        return acc;
    }
    SPM_CLONES static void spm_or_bit_u8(
        unsigned char* code, const unsigned char* r, Py_ssize_t total, unsigned char bit)
    {
        Py_ssize_t x;
        for (x = 0; x < total; x++) code[x] |= (r[x] != 0) ? bit : 0;
    }
    SPM_CLONES static void spm_depth_plane_u8(
        const unsigned char* p, unsigned char* out, Py_ssize_t lo, Py_ssize_t hi, Py_ssize_t s1,
        Py_ssize_t s0)
    {
        Py_ssize_t x;
        for (x = lo; x < hi; x++) {
            unsigned char o = p[x];
            int f = ((p[x - 1] != o) | (p[x + 1] != o) | (p[x - s1] != o) | (p[x + s1] != o)
                     | (p[x - s0] != o) | (p[x + s0] != o));
            int e = ((p[x - s1 - 1] != o) | (p[x - s1 + 1] != o) | (p[x + s1 - 1] != o)
                     | (p[x + s1 + 1] != o) | (p[x - s0 - 1] != o) | (p[x - s0 + 1] != o)
                     | (p[x + s0 - 1] != o) | (p[x + s0 + 1] != o) | (p[x - s0 - s1] != o)
                     | (p[x - s0 + s1] != o) | (p[x + s0 - s1] != o) | (p[x + s0 + s1] != o));
            int c = ((p[x - s0 - s1 - 1] != o) | (p[x - s0 - s1 + 1] != o) | (p[x - s0 + s1 - 1] != o)
                     | (p[x - s0 + s1 + 1] != o) | (p[x + s0 - s1 - 1] != o) | (p[x + s0 - s1 + 1] != o)
                     | (p[x + s0 + s1 - 1] != o) | (p[x + s0 + s1 + 1] != o));
            e = e | f;
            c = c | e;
            out[x] = o != 0 ? (unsigned char)(3 - f - e - c) : 0;
        }
    }
    """
    void spm_erode_step_u8(const cnp.uint8_t* src, cnp.uint8_t* dst, Py_ssize_t total, Py_ssize_t shift) noexcept nogil
    void spm_or_bit_u8(cnp.uint8_t* code, const cnp.uint8_t* r, Py_ssize_t total, cnp.uint8_t bit) noexcept nogil
    cnp.uint8_t spm_or_u8(const cnp.uint8_t* a, Py_ssize_t n) noexcept nogil
    void spm_depth_plane_u8(
        const cnp.uint8_t* p, cnp.uint8_t* out, Py_ssize_t lo, Py_ssize_t hi, Py_ssize_t s1, Py_ssize_t s0
    ) noexcept nogil


# labels of the erosion (any id) and words tested for zero (any integer type viewed unsigned)
ctypedef fused anylabel_t:
    cnp.uint8_t
    cnp.uint16_t
    cnp.uint32_t
    cnp.uint64_t

# the vertebra ids the other kernels read (1..255)
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
    value_t
    double

#: bits of the code volume written by :func:`label_classes`
cdef enum:
    _CORE = 4
    _DEEP = 8
DEPTH_MASK = 3
CORE_BIT = _CORE
DEEP_BIT = _DEEP


cdef inline anylabel_t _or_range(const anylabel_t* L, Py_ssize_t a, Py_ssize_t b) noexcept nogil:
    """The bitwise OR of ``L[a:b]``: zero when all are zero (a branch-free loop the compiler vectorises)."""
    cdef anylabel_t acc = 0
    cdef Py_ssize_t k
    if anylabel_t is cnp.uint8_t:
        return spm_or_u8(L + a, b - a) if b > a else 0
    for k in range(a, b):
        acc = acc | L[k]
    return acc


cdef inline Py_ssize_t _run_end(
    const anylabel_t* L, Py_ssize_t k, Py_ssize_t n, anylabel_t v
) noexcept nogil:
    """The first index >= k of a contiguous row ``L[:n]`` whose value is not ``v`` (n if none):
    for 1- and 2-byte labels 8 bytes at a time (XOR with ``v`` repeated, then the lowest nonzero
    byte of a little-endian word), the rest one by one."""
    cdef cnp.uint64_t word, pat
    cdef Py_ssize_t per
    if _LITTLE and sizeof(anylabel_t) <= 2:
        per = 8 // sizeof(anylabel_t)
        if sizeof(anylabel_t) == 1:
            pat = <cnp.uint64_t>v * <cnp.uint64_t>0x0101010101010101
        else:
            pat = <cnp.uint64_t>v * <cnp.uint64_t>0x0001000100010001
        while k + per <= n:
            memcpy(&word, L + k, 8)
            word = word ^ pat
            if word != 0:
                return k + spm_ctz64(word) // (8 * <int>sizeof(anylabel_t))
            k += per
    while k < n and L[k] == v:
        k += 1
    return k


cdef void _clear_row_ends(anylabel_t* a, Py_ssize_t n_rows, Py_ssize_t n, Py_ssize_t h) noexcept nogil:
    """Zero the first and last h voxels of each of n_rows contiguous rows of length n."""
    cdef Py_ssize_t r, k
    for r in range(n_rows):
        for k in range(min(h, n)):
            a[r * n + k] = 0
            a[r * n + n - 1 - k] = 0


cdef void _erode_step(
    const anylabel_t* src, anylabel_t* dst, Py_ssize_t total, Py_ssize_t shift
) noexcept nogil:
    """dst[x] = src[x] when src[x - shift] == src[x] == src[x + shift], else 0, over a flat block of
    ``total`` voxels (0 within ``shift`` of its ends): one step of the erosion by doubling shifts,
    in one vectorised loop."""
    cdef Py_ssize_t x, lo = shift, hi = total - shift
    if anylabel_t is cnp.uint8_t:
        spm_erode_step_u8(src, dst, total, shift)
        return
    if hi <= lo:
        for x in range(total):
            dst[x] = 0
        return
    for x in range(lo):
        dst[x] = 0
    for x in range(hi, total):
        dst[x] = 0
    for x in range(lo, hi):
        dst[x] = src[x] if ((src[x - shift] == src[x]) & (src[x + shift] == src[x])) else 0


cdef anylabel_t* _erode_box(
    anylabel_t* a, anylabel_t* b, Py_ssize_t n0, Py_ssize_t n1, Py_ssize_t n2,
    Py_ssize_t h0, Py_ssize_t h1, Py_ssize_t h2,
) noexcept nogil:
    """Erode the labels in ``a`` by the box of half-widths (h0, h1, h2), ping-ponging with ``b``
    (separable: each axis erodes the previous result; beyond the array is background); returns the
    buffer holding the result.

    Each axis by doubling shifts: a voxel eroded by radius r keeps its label at radius r + s when
    the voxels s away on both sides keep theirs at radius r (their windows cover r + s when
    s <= r + 1), so radius h takes about log2(h) + 1 passes instead of h; s = min(r + 1, h - r)."""
    cdef anylabel_t* tmp
    cdef Py_ssize_t i, plane = n1 * n2, r, s
    r = 0
    while r < h2:
        s = min(r + 1, h2 - r)
        _erode_step(a, b, n0 * plane, s)
        _clear_row_ends(b, n0 * n1, n2, s)  # (their shifts wrapped into the neighbouring rows)
        tmp = a; a = b; b = tmp
        r += s
    r = 0
    while r < h1:
        s = min(r + 1, h1 - r)
        for i in range(n0):
            _erode_step(a + i * plane, b + i * plane, plane, s * n2)
        tmp = a; a = b; b = tmp
        r += s
    r = 0
    while r < h0:
        s = min(r + 1, h0 - r)
        _erode_step(a, b, n0 * plane, s * plane)
        tmp = a; a = b; b = tmp
        r += s
    return a


cdef inline void _or_bit(cnp.uint8_t* code, const anylabel_t* r, Py_ssize_t total, cnp.uint8_t bit) noexcept nogil:
    """code[x] |= bit where r[x] != 0."""
    cdef Py_ssize_t x
    if anylabel_t is cnp.uint8_t:
        spm_or_bit_u8(code, r, total, bit)
        return
    for x in range(total):
        code[x] = code[x] | (bit if r[x] != 0 else 0)


cdef void _depth_classes(const anylabel_t* L, cnp.uint8_t* code, Py_ssize_t n0, Py_ssize_t n1, Py_ssize_t n2) noexcept nogil:
    """code[x] = depth class of :func:`spinemri.arrays.morphology.depth_classes` for label voxels (0-3),
    0 for background; voxels on the array's faces are class 0 (a face neighbour lies outside).

    Each inner plane is one flat loop (long enough to vectorise when the last axis is short, as
    the few sagittal slices of a spine MR are); the voxels of its border rows and columns, whose
    neighbours wrap around, are then set to 0."""
    cdef Py_ssize_t i, j, x, s0 = n1 * n2, s1 = n2, lo = n2 + 1, hi = n1 * n2 - n2 - 1
    cdef const anylabel_t* p
    cdef cnp.uint8_t* out
    cdef anylabel_t o
    cdef int f, e, c
    for x in range(n0 * s0):
        code[x] = 0
    if n0 < 3 or n1 < 3 or n2 < 3:
        return
    for i in range(1, n0 - 1):
        p = L + i * s0
        out = code + i * s0
        if anylabel_t is cnp.uint8_t:
            spm_depth_plane_u8(p, out, lo, hi, s1, s0)
        else:
            for x in range(lo, hi):
                o = p[x]
                f = ((p[x - 1] != o) | (p[x + 1] != o) | (p[x - s1] != o) | (p[x + s1] != o)
                     | (p[x - s0] != o) | (p[x + s0] != o))
                e = ((p[x - s1 - 1] != o) | (p[x - s1 + 1] != o) | (p[x + s1 - 1] != o) | (p[x + s1 + 1] != o)
                     | (p[x - s0 - 1] != o) | (p[x - s0 + 1] != o) | (p[x + s0 - 1] != o) | (p[x + s0 + 1] != o)
                     | (p[x - s0 - s1] != o) | (p[x - s0 + s1] != o) | (p[x + s0 - s1] != o) | (p[x + s0 + s1] != o))
                c = ((p[x - s0 - s1 - 1] != o) | (p[x - s0 - s1 + 1] != o) | (p[x - s0 + s1 - 1] != o)
                     | (p[x - s0 + s1 + 1] != o) | (p[x + s0 - s1 - 1] != o) | (p[x + s0 - s1 + 1] != o)
                     | (p[x + s0 + s1 - 1] != o) | (p[x + s0 + s1 + 1] != o))
                e = e | f
                c = c | e
                out[x] = (3 - f - e - c) if o != 0 else 0
        for j in range(n1):  # the first and last voxel of each row (their k-neighbours wrapped)
            out[j * n2] = 0
            out[j * n2 + n2 - 1] = 0


def label_classes(
    const anylabel_t[:, :, ::1] lab, Py_ssize_t h0, Py_ssize_t h1, Py_ssize_t h2, bint depth=True,
    Py_ssize_t d0=-1, Py_ssize_t d1=-1, Py_ssize_t d2=-1,
):
    """Per voxel of ``lab`` (labels, 0 = background; beyond the array is background) a uint8 code:
    bit 2 (``CORE_BIT``) set when the voxel is in the box erosion of its label by (h0, h1, h2)
    (``erode_labels_box(lab, (h0, h1, h2), border_is_boundary=True)``), with ``depth`` bits 0-1 the
    depth class of :func:`spinemri.arrays.morphology.depth_classes` (0 for background voxels), and
    with ``d0 >= 0`` bit 3 (``DEEP_BIT``) set when it is in the erosion by (d0, d1, d2) (the
    erosion by (h0, h1, h2) eroded further by the difference when d >= h on every axis: box
    erosions compose)."""
    cdef Py_ssize_t n0 = lab.shape[0], n1 = lab.shape[1], n2 = lab.shape[2]
    cdef Py_ssize_t size = n0 * n1 * n2, x
    cdef bint deep = d0 >= 0
    cdef bint from_core = deep and d0 >= h0 and d1 >= h1 and d2 >= h2
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
        memcpy(W, L, size * sizeof(anylabel_t))
        R = _erode_box(W, S, n0, n1, n2, h0, h1, h2)
        _or_bit(code, R, size, _CORE)
        if deep:
            if from_core:
                W = R
                S = &scratch_v[0] if R == &work_v[0] else &work_v[0]
                R = _erode_box(W, S, n0, n1, n2, d0 - h0, d1 - h1, d2 - h2)
            else:
                W = &work_v[0]
                S = &scratch_v[0]
                memcpy(W, L, size * sizeof(anylabel_t))
                R = _erode_box(W, S, n0, n1, n2, d0, d1, d2)
            _or_bit(code, R, size, _DEEP)
    return code_arr


def class_histogram(
    const label_t[:, :, ::1] lab, const value_t[:, :, ::1] values, const cnp.uint8_t[:, :, ::1] code,
    cnp.int64_t lo, Py_ssize_t nbins, Py_ssize_t n_ids,
):
    """Histogram of ``values - lo`` per (label, ``code & 7``) over the labelled voxels:
    int32 array (n_ids + 1, 8, nbins) (fewer than 2**31 voxels; sums over it are int64 in numpy).
    Labels must be <= n_ids and values in [lo, lo + nbins)."""
    cdef Py_ssize_t size = lab.shape[0] * lab.shape[1] * lab.shape[2], x
    hist_arr = np.zeros((n_ids + 1) * 8 * nbins, dtype=np.int32)  # fits the L2 cache better; < 2**31 voxels
    if size == 0:
        return hist_arr.reshape(n_ids + 1, 8, nbins)
    cdef cnp.int32_t[::1] hist_v = hist_arr
    cdef cnp.int32_t* H = &hist_v[0]
    cdef const label_t* L = &lab[0, 0, 0]
    cdef const value_t* V = &values[0, 0, 0]
    cdef const cnp.uint8_t* C = &code[0, 0, 0]
    cdef label_t v
    with nogil:
        for x in range(size):
            v = L[x]
            if v != 0:
                H[(<Py_ssize_t>v * 8 + (C[x] & 7)) * nbins + <Py_ssize_t>(V[x] - lo)] += 1
    return hist_arr.reshape(n_ids + 1, 8, nbins)


def candidates(
    const label_t[:, :, ::1] lab, const num_t[:, :, ::1] values, const cnp.uint8_t[:, :, ::1] code,
    const double[::1] thr, const double[::1] seed_thr, bint bright, Py_ssize_t max_count,
    double bound=0.0, bint use_bound=False, const cnp.int64_t[::1] ithr=None,
):
    """Candidate voxels: labelled voxels strictly beyond their label's ``thr`` (above when
    ``bright``, else below; NaN: none). Returns their flat indices, ascending, and whether each is a
    seed (in the core, ``code & CORE_BIT``, and also beyond ``seed_thr``); ``max_count``: at least
    their number (e.g. the number of labelled voxels).

    With ``use_bound``, ``bound`` (a value of the values' type) is a bound no candidate can miss:
    every candidate is above it (``bright``) or below it (else); blocks of 64 voxels with no value
    beyond it are skipped after one vectorised test (e.g. the floor of the lowest threshold of an
    integer image: most of the box is below every threshold).

    ``ithr`` (integer images): the same test as integers, ``value > ithr[label]`` (``bright``) or
    ``value < ithr[label]``, one int64 per label (0: never; ``candidate_thresholds``): no branch on
    the label nor conversion to float per voxel."""
    cdef Py_ssize_t size = lab.shape[0] * lab.shape[1] * lab.shape[2], x, count = 0, q, e
    idx_arr = np.empty(max(max_count, 0), dtype=np.intp)
    seed_arr = np.empty(max(max_count, 0), dtype=np.bool_)
    if size == 0 or max_count <= 0:
        return idx_arr[:0].copy(), seed_arr[:0].copy()
    cdef Py_ssize_t[::1] idx = idx_arr
    cdef cnp.npy_bool[::1] seed = seed_arr
    cdef const label_t* L = &lab[0, 0, 0]
    cdef const num_t* V = &values[0, 0, 0]
    cdef const cnp.uint8_t* C = &code[0, 0, 0]
    cdef label_t v
    cdef double y
    cdef num_t lim = <num_t>bound if use_bound else <num_t>0
    cdef int hit
    cdef bint fast = ithr is not None and ithr.shape[0] >= 256
    cdef const cnp.int64_t* T = &ithr[0] if fast else NULL
    with nogil:
        x = 0
        while x < size:
            e = min(x + 64, size)
            if use_bound:
                hit = 0
                if bright:
                    for q in range(x, e):  # vectorised
                        hit = hit | (V[q] > lim)
                else:
                    for q in range(x, e):
                        hit = hit | (V[q] < lim)
                if hit == 0:
                    x = e
                    continue
            if num_t is not double and fast:
                if bright:
                    for q in range(x, e):
                        if <cnp.int64_t>V[q] > T[L[q]] and count < max_count:
                            v = L[q]
                            y = <double>V[q]
                            idx[count] = q
                            seed[count] = (C[q] & _CORE) != 0 and y > seed_thr[v]
                            count += 1
                else:
                    for q in range(x, e):
                        if <cnp.int64_t>V[q] < T[L[q]] and count < max_count:
                            v = L[q]
                            y = <double>V[q]
                            idx[count] = q
                            seed[count] = (C[q] & _CORE) != 0 and y < seed_thr[v]
                            count += 1
                x = e
                continue
            for q in range(x, e):
                v = L[q]
                if v == 0:
                    continue
                y = <double>V[q]
                if ((y > thr[v]) if bright else (y < thr[v])) and count < max_count:
                    idx[count] = q
                    seed[count] = (C[q] & _CORE) != 0 and ((y > seed_thr[v]) if bright else (y < seed_thr[v]))
                    count += 1
            x = e
    return idx_arr[:count].copy(), seed_arr[:count].copy()


def grow_groups(
    const label_t[:, :, ::1] lab, const num_t[:, :, ::1] values, const cnp.uint8_t[:, :, ::1] code,
    const double[::1] offset, const Py_ssize_t[::1] idx, const double[::1] cut, double sign,
    const Py_ssize_t[::1] bounds,
):
    """:func:`grow` of each group ``idx[bounds[g]:bounds[g + 1]]`` (with its ``cut``) on its own, in
    one call: the neighbours found by group ``g`` (not in group ``g``, each once per group, in the
    order found) concatenated over the groups, and the group of each. One mark array for all
    groups, its marks cleared after each group (only those it set)."""
    cdef Py_ssize_t n0 = lab.shape[0], n1 = lab.shape[1], n2 = lab.shape[2]
    cdef Py_ssize_t m = idx.shape[0], n_g = bounds.shape[0] - 1, g, t, i, j, k, ii, jj, kk, x, y
    cdef Py_ssize_t nfound = 0, start
    cdef int di, dj, dk
    cdef label_t v, w
    cdef double corr
    out_arr = np.empty(26 * m, dtype=np.intp)
    grp_arr = np.empty(26 * m, dtype=np.intp)
    mark_arr = np.zeros(n0 * n1 * n2, dtype=np.uint8)
    cdef Py_ssize_t[::1] out = out_arr, grp = grp_arr
    cdef cnp.uint8_t[::1] mark = mark_arr
    with nogil:
        for g in range(n_g):
            start = nfound
            for t in range(bounds[g], bounds[g + 1]):
                mark[idx[t]] = 1
            for t in range(bounds[g], bounds[g + 1]):
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
                            if kk < 0 or kk >= n2:
                                continue
                            y = (ii * n1 + jj) * n2 + kk
                            if mark[y] != 0:
                                continue
                            w = lab[ii, jj, kk]
                            if w != v:
                                continue
                            corr = <double>values[ii, jj, kk] - offset[4 * <Py_ssize_t>w + (code[ii, jj, kk] & 3)]
                            if (corr - cut[t]) * sign > 0:
                                out[nfound] = y
                                grp[nfound] = g
                                nfound += 1
                                mark[y] = 2
            for t in range(bounds[g], bounds[g + 1]):
                mark[idx[t]] = 0
            for t in range(start, nfound):
                mark[out[t]] = 0
    return out_arr[:nfound].copy(), grp_arr[:nfound].copy()


def nonzero_box(const anylabel_t[:, :, ::1] a):
    """(i0, i1, j0, j1, k0, k1), the half-open bounding box of the nonzero voxels, or None
    (any integer or bool array viewed as unsigned words of its size)."""
    cdef Py_ssize_t n0 = a.shape[0], n1 = a.shape[1], n2 = a.shape[2], i, j, k
    cdef Py_ssize_t i0 = n0, i1 = -1, j0 = n1, j1 = -1, k0 = n2, k1 = -1
    cdef const anylabel_t* row
    if n0 * n1 * n2 == 0:
        return None
    with nogil:
        for i in range(n0):
            if _or_range(&a[i, 0, 0], 0, n1 * n2) == 0:  # an empty plane in one vectorised pass
                continue
            for j in range(n1):
                row = &a[i, j, 0]
                if _or_range(row, 0, n2) == 0:  # vectorised: the row's OR first
                    continue
                if i < i0:
                    i0 = i
                i1 = i
                if j < j0:
                    j0 = j
                if j > j1:
                    j1 = j
                # the row's ends beyond the extent so far: a vectorised OR first, the scalar search
                # only when it finds something (labels far from the row's ends made the searches of
                # every row cost more than the pass itself)
                if _or_range(row, 0, min(k0, n2)) != 0:
                    for k in range(min(k0, n2)):
                        if row[k] != 0:
                            k0 = k
                            break
                if _or_range(row, k1 + 1, n2) != 0:
                    k = n2 - 1
                    while k > k1:
                        if row[k] != 0:
                            k1 = k
                            break
                        k -= 1
    if i1 < 0:
        return None
    return i0, i1 + 1, j0, j1 + 1, k0, k1 + 1


def vertebra_tables(
    const label_t[:, :, :] lab, const value_t[:, :, :] values, int lr_axis, Py_ssize_t n_ids,
    cnp.int64_t lo, Py_ssize_t nbins,
):
    """Voxel counts per (label, index along ``lr_axis``), int64 (n_ids + 1, shape[lr_axis]), and
    the histogram of ``values - lo`` per label, int64 (n_ids + 1, nbins) (``nbins`` 0: none).
    The arrays may be strided views (a box of a larger volume, in any memory order); fewer than
    2**31 voxels."""
    cdef Py_ssize_t n0 = lab.shape[0], n1 = lab.shape[1], n2 = lab.shape[2], i, j, k, n_lr
    n_lr = lab.shape[lr_axis]
    tab_arr = np.zeros((n_ids + 1) * n_lr, dtype=np.int64)
    hist_arr = np.zeros((n_ids + 1) * max(nbins, 1), dtype=np.int32)  # fits the L2 cache better
    cdef cnp.int64_t[::1] tab_v = tab_arr
    cdef cnp.int32_t[::1] hist_v = hist_arr
    cdef cnp.int64_t* T = &tab_v[0]
    cdef cnp.int32_t* H = &hist_v[0]
    cdef Py_ssize_t hb = max(nbins, 1), lr, sl = lab.strides[2] // sizeof(label_t), sv = values.strides[2] // sizeof(value_t)
    cdef const label_t* L
    cdef const value_t* V
    cdef cnp.int64_t* D
    cdef label_t v
    cdef bint h = nbins > 0
    cdef Py_ssize_t ka, w = n_lr + 1
    if not h and sl == 1 and n2 > 0:
        # counts only, contiguous rows: each row cut into runs of one label (ends found 8 bytes at a
        # time); a run adds its length to one cell, or along the rows (lr_axis 2) +1 / -1 at its
        # ends of a difference table summed at the end: exact integers, the same counts
        dif_arr = np.zeros((n_ids + 1) * w, dtype=np.int64)
        D = <cnp.int64_t*> cnp.PyArray_DATA(dif_arr)
        with nogil:
            for i in range(n0):
                for j in range(n1):
                    lr = i if lr_axis == 0 else j
                    L = &lab[i, j, 0]
                    k = _run_end(L, 0, n2, <label_t>0)
                    while k < n2:
                        v = L[k]
                        ka = k
                        k = _run_end(L, k + 1, n2, v)
                        if v == 0 or <Py_ssize_t>v > n_ids:
                            continue
                        if lr_axis == 2:
                            D[<Py_ssize_t>v * w + ka] += 1
                            D[<Py_ssize_t>v * w + k] -= 1
                        else:
                            T[<Py_ssize_t>v * n_lr + lr] += k - ka
        if lr_axis == 2:
            tab_arr = np.cumsum(dif_arr.reshape(n_ids + 1, w)[:, :n_lr], axis=1)
        return tab_arr.reshape(n_ids + 1, n_lr), np.zeros((n_ids + 1, 0), dtype=np.int64)
    with nogil:
        for i in range(n0):
            for j in range(n1):
                lr = i if lr_axis == 0 else j
                if n2 == 0:
                    continue
                L = &lab[i, j, 0]  # a row: its voxels are sl / sv elements apart
                V = &values[i, j, 0]
                for k in range(n2):
                    v = L[k * sl]
                    if v == 0:
                        continue
                    T[<Py_ssize_t>v * n_lr + (k if lr_axis == 2 else lr)] += 1
                    if h:
                        H[<Py_ssize_t>v * hb + <Py_ssize_t>(V[k * sv] - lo)] += 1
    return tab_arr.reshape(n_ids + 1, n_lr), hist_arr.reshape(n_ids + 1, hb)[:, :nbins].astype(np.int64)


cdef inline Py_ssize_t _find(Py_ssize_t* parent, Py_ssize_t a) noexcept nogil:
    cdef Py_ssize_t r = a, t
    while parent[r] != r:
        r = parent[r]
    while parent[a] != r:  # path compression
        t = parent[a]
        parent[a] = r
        a = t
    return r


def sparse_components(
    const Py_ssize_t[::1] idx, Py_ssize_t n0, Py_ssize_t n1, Py_ssize_t n2, int connectivity,
    const cnp.int64_t[::1] codes=None,
):
    """Connected components of the voxels ``idx`` (flat C-order indices into an (n0, n1, n2) array,
    strictly ascending) with 6-, 18- or 26-connectivity, by union-find over the voxel list's runs:
    the cost follows the number of voxels, not the array's size. Returns the component of each voxel
    (1..N, numbered in order of their first voxel) and N.

    The runs are the voxels consecutive along the last axis; a run joins the runs of the rows
    before it that it touches: the row before in its plane and the three rows around its own in the
    plane before (6-connectivity: the row before and the same row of the plane before, overlapping
    columns only; 18: columns one apart as well in those two, overlapping only in the two diagonal
    rows; 26: columns one apart in all four). Each of those four rows is followed by its own pointer
    into the ascending list of runs.

    With ``codes`` (one per voxel), voxels of different codes are never connected: a run holds
    one code, and runs join only runs of their own code (the multi-label components of an array
    holding the codes, as cc3d labels it)."""
    cdef Py_ssize_t m = idx.shape[0], t, u, r, q, x, nr = 0, ra, rb, n = 0, w, row, j
    cdef Py_ssize_t k0, k1, e, prow
    cdef int o
    cdef bint has_codes = codes is not None
    label_arr = np.zeros(m, dtype=np.intp)
    if m == 0:
        return label_arr, 0
    # runs: start position in idx, row (i * n1 + j), first and last column
    start_arr = np.empty(m + 1, dtype=np.intp)
    rrow_arr = np.empty(m, dtype=np.intp)
    rk0_arr = np.empty(m, dtype=np.intp)
    rk1_arr = np.empty(m, dtype=np.intp)
    parent_arr = np.empty(m, dtype=np.intp)
    cdef Py_ssize_t[::1] label = label_arr, start = start_arr, rrow = rrow_arr, rk0 = rk0_arr
    cdef Py_ssize_t[::1] rk1 = rk1_arr, parent = parent_arr
    # the rows before a row: (row offset, column reach, whether the row must be in the same plane)
    cdef Py_ssize_t doff[4]
    cdef Py_ssize_t reach[4]
    cdef Py_ssize_t dj[4]
    cdef Py_ssize_t ptr[4]
    cdef int n_off = 0
    doff[0] = 1; dj[0] = -1; reach[0] = 0 if connectivity == 6 else 1  # row j - 1, same plane
    doff[1] = n1; dj[1] = 0; reach[1] = 0 if connectivity == 6 else 1  # row j, plane before
    n_off = 2
    if connectivity != 6:
        doff[2] = n1 + 1; dj[2] = -1; reach[2] = 1 if connectivity == 26 else 0  # row j - 1, plane before
        doff[3] = n1 - 1; dj[3] = 1; reach[3] = 1 if connectivity == 26 else 0  # row j + 1, plane before
        n_off = 4
    for o in range(4):
        ptr[o] = 0
    with nogil:
        t = 0
        while t < m:
            x = idx[t]
            row = x // n2
            u = t + 1
            e = (row + 1) * n2  # the row's end
            if has_codes:
                while u < m and idx[u] == idx[u - 1] + 1 and idx[u] < e and codes[u] == codes[t]:
                    u += 1
            else:
                while u < m and idx[u] == idx[u - 1] + 1 and idx[u] < e:
                    u += 1
            start[nr] = t
            rrow[nr] = row
            rk0[nr] = x - row * n2
            rk1[nr] = idx[u - 1] - row * n2
            parent[nr] = nr
            nr += 1
            t = u
        start[nr] = m
        for r in range(nr):
            row = rrow[r]
            j = row % n1
            k0 = rk0[r]
            k1 = rk1[r]
            for o in range(n_off):
                if j + dj[o] < 0 or j + dj[o] >= n1:
                    continue
                prow = row - doff[o]
                if prow < 0:
                    continue
                # runs of row prow touching columns k0 - reach .. k1 + reach
                q = ptr[o]
                while q < r and (rrow[q] < prow or (rrow[q] == prow and rk1[q] < k0 - reach[o])):
                    q += 1
                ptr[o] = q
                e = q
                while e < r and rrow[e] == prow and rk0[e] <= k1 + reach[o]:
                    if has_codes and codes[start[e]] != codes[start[r]]:
                        e += 1
                        continue
                    ra = _find(&parent[0], r)
                    rb = _find(&parent[0], e)
                    if ra != rb:
                        if ra < rb:
                            parent[rb] = ra
                        else:
                            parent[ra] = rb
                    e += 1
        # number the components in order of their first run (= first voxel: runs ascend); a root
        # is its component's first run (the lower root always wins a union)
        for r in range(nr):
            rk0[r] = _find(&parent[0], r)  # (rk0 reused: the root of each run)
        for r in range(nr):
            w = rk0[r]
            if w == r:
                n += 1
                rk1[r] = n  # (rk1 reused: the number of each root, set before its other runs)
            for t in range(start[r], start[r + 1]):
                label[t] = rk1[w]
    return label_arr, n


def label_moments(
    const anylabel_t[:, :, :] lab, Py_ssize_t n_labels, const double[:, ::1] lin, const double[::1] offset,
):
    """Per label ``0..n_labels - 1`` (labels >= n_labels are skipped): the voxel count, int64
    (n_labels,); the sums of the voxel indices (i, j, k), int64 (n_labels, 3); the sums of their
    products (ii, ij, ik, jj, jk, kk), int64 (n_labels, 6); and the smallest and largest world
    coordinate ``lin @ (ijk + offset)`` of a voxel centre per world axis, float64 (n_labels, 3)
    each (+inf / -inf without voxels). Definition: ``np.bincount`` of the labels and of their
    index products, ``lin @ ijk`` reduced per label (tests/test_kernels.py). ``lab`` may be a
    strided view in any memory order (fastest along its last axis); indices are relative to it.
    One pass: each row is cut into runs of one label, and a run's sums are closed forms of its
    ends (a linear function is extreme at a run's ends)."""
    cdef Py_ssize_t n0 = lab.shape[0], n1 = lab.shape[1], n2 = lab.shape[2], i, j, k, ka, m, d
    cdef Py_ssize_t sl = lab.strides[2] // sizeof(anylabel_t)
    cnt_arr = np.zeros(max(n_labels, 1), dtype=np.int64)
    s1_arr = np.zeros((max(n_labels, 1), 3), dtype=np.int64)
    s2_arr = np.zeros((max(n_labels, 1), 6), dtype=np.int64)
    lo_arr = np.full((max(n_labels, 1), 3), np.inf)
    hi_arr = np.full((max(n_labels, 1), 3), -np.inf)
    cdef cnp.int64_t[::1] cnt = cnt_arr
    cdef cnp.int64_t[:, ::1] s1 = s1_arr
    cdef cnp.int64_t[:, ::1] s2 = s2_arr
    cdef double[:, ::1] wlo = lo_arr
    cdef double[:, ::1] whi = hi_arr
    cdef const anylabel_t* L
    cdef anylabel_t v
    cdef cnp.int64_t ii, jj, kb, sk, skk, mm
    cdef double w, fi, fj
    with nogil:
        for i in range(n0):
            for j in range(n1):
                if n2 == 0:
                    continue
                L = &lab[i, j, 0]
                k = 0
                while k < n2:
                    v = L[k * sl]
                    ka = k
                    k += 1
                    while k < n2 and L[k * sl] == v:
                        k += 1
                    if v == 0 or <Py_ssize_t>v >= n_labels:
                        continue
                    # the run ka .. k - 1 of label v
                    m = k - ka
                    mm = m
                    ii = i
                    jj = j
                    kb = k - 1
                    sk = (<cnp.int64_t>ka + kb) * mm // 2
                    skk = (kb * (kb + 1) * (2 * kb + 1) - (<cnp.int64_t>ka - 1) * ka * (2 * <cnp.int64_t>ka - 1)) // 6
                    cnt[v] += mm
                    s1[v, 0] += ii * mm
                    s1[v, 1] += jj * mm
                    s1[v, 2] += sk
                    s2[v, 0] += ii * ii * mm
                    s2[v, 1] += ii * jj * mm
                    s2[v, 2] += ii * sk
                    s2[v, 3] += jj * jj * mm
                    s2[v, 4] += jj * sk
                    s2[v, 5] += skk
                    fi = i + offset[0]
                    fj = j + offset[1]
                    for d in range(3):
                        w = lin[d, 0] * fi + lin[d, 1] * fj + lin[d, 2] * (ka + offset[2])
                        if w < wlo[v, d]:
                            wlo[v, d] = w
                        if w > whi[v, d]:
                            whi[v, d] = w
                        w = lin[d, 0] * fi + lin[d, 1] * fj + lin[d, 2] * (kb + offset[2])
                        if w < wlo[v, d]:
                            wlo[v, d] = w
                        if w > whi[v, d]:
                            whi[v, d] = w
    return cnt_arr[:n_labels], s1_arr[:n_labels], s2_arr[:n_labels], lo_arr[:n_labels], hi_arr[:n_labels]


def label_moments_bbox(const anylabel_t[:, :, ::1] lab, Py_ssize_t n_labels, const double[:, ::1] lin):
    """``label_moments(lab, n_labels, lin, zeros(3))`` and ``nonzero_box(lab)`` in one pass, and the
    largest value present (0 without nonzero voxels): returns (count, sums, products, min, max,
    box or None, largest value). Indices are of the whole array. Rows are tested by a vectorised
    OR (empty planes first), a nonzero row cut into runs of one label, each run's end found 8 bytes
    at a time for 1- and 2-byte labels (labels >= n_labels are skipped but count for the box)."""
    cdef Py_ssize_t n0 = lab.shape[0], n1 = lab.shape[1], n2 = lab.shape[2], i, j, k, ka, m, d
    cdef Py_ssize_t i0 = n0, i1 = -1, j0 = n1, j1 = -1, k0 = n2, k1 = -1
    cnt_arr = np.zeros(max(n_labels, 1), dtype=np.int64)
    s1_arr = np.zeros((max(n_labels, 1), 3), dtype=np.int64)
    s2_arr = np.zeros((max(n_labels, 1), 6), dtype=np.int64)
    lo_arr = np.full((max(n_labels, 1), 3), np.inf)
    hi_arr = np.full((max(n_labels, 1), 3), -np.inf)
    cdef cnp.int64_t[::1] cnt = cnt_arr
    cdef cnp.int64_t[:, ::1] s1 = s1_arr
    cdef cnp.int64_t[:, ::1] s2 = s2_arr
    cdef double[:, ::1] wlo = lo_arr
    cdef double[:, ::1] whi = hi_arr
    cdef const anylabel_t* L
    cdef anylabel_t v, vmax = 0
    cdef cnp.int64_t ii, jj, kb, sk, skk, mm
    cdef double w, fi, fj
    if n0 * n1 * n2 == 0:
        return cnt_arr[:n_labels], s1_arr[:n_labels], s2_arr[:n_labels], lo_arr[:n_labels], hi_arr[:n_labels], None, 0
    with nogil:
        for i in range(n0):
            if _or_range(&lab[i, 0, 0], 0, n1 * n2) == 0:  # an empty plane in one vectorised pass
                continue
            for j in range(n1):
                L = &lab[i, j, 0]
                if _or_range(L, 0, n2) == 0:  # vectorised: the row's OR first
                    continue
                if i < i0:
                    i0 = i
                i1 = i
                if j < j0:
                    j0 = j
                if j > j1:
                    j1 = j
                k = 0
                ii = i
                jj = j
                fi = <double>i
                fj = <double>j
                while k < n2:
                    v = L[k]
                    ka = k
                    k = _run_end(L, k + 1, n2, v)
                    if v == 0:
                        continue
                    if ka < k0:
                        k0 = ka
                    if k - 1 > k1:
                        k1 = k - 1
                    if v > vmax:
                        vmax = v
                    if <Py_ssize_t>v >= n_labels:
                        continue
                    # the run ka .. k - 1 of label v
                    m = k - ka
                    mm = m
                    kb = k - 1
                    sk = (<cnp.int64_t>ka + kb) * mm // 2
                    skk = (kb * (kb + 1) * (2 * kb + 1) - (<cnp.int64_t>ka - 1) * ka * (2 * <cnp.int64_t>ka - 1)) // 6
                    cnt[v] += mm
                    s1[v, 0] += ii * mm
                    s1[v, 1] += jj * mm
                    s1[v, 2] += sk
                    s2[v, 0] += ii * ii * mm
                    s2[v, 1] += ii * jj * mm
                    s2[v, 2] += ii * sk
                    s2[v, 3] += jj * jj * mm
                    s2[v, 4] += jj * sk
                    s2[v, 5] += skk
                    for d in range(3):
                        w = lin[d, 0] * fi + lin[d, 1] * fj + lin[d, 2] * (ka + 0.0)
                        if w < wlo[v, d]:
                            wlo[v, d] = w
                        if w > whi[v, d]:
                            whi[v, d] = w
                        w = lin[d, 0] * fi + lin[d, 1] * fj + lin[d, 2] * (kb + 0.0)
                        if w < wlo[v, d]:
                            wlo[v, d] = w
                        if w > whi[v, d]:
                            whi[v, d] = w
    box = None if i1 < 0 else (i0, i1 + 1, j0, j1 + 1, k0, k1 + 1)
    return (
        cnt_arr[:n_labels], s1_arr[:n_labels], s2_arr[:n_labels], lo_arr[:n_labels], hi_arr[:n_labels], box,
        int(vmax),
    )


cdef void _dilate_flat(
    const cnp.uint8_t* src, cnp.uint8_t* dst, Py_ssize_t total, Py_ssize_t step, Py_ssize_t s
) noexcept nogil:
    """dst[x] = src[x] | src[x - s·step] | src[x + s·step] over a flat block of ``total`` voxels
    (shifts beyond the block's ends left out)."""
    cdef Py_ssize_t x, d = s * step
    for x in range(total):
        dst[x] = src[x]
    for x in range(d, total):
        dst[x] = dst[x] | src[x - d]
    for x in range(total - d):
        dst[x] = dst[x] | src[x + d]


def dilate_box(const cnp.uint8_t[:, :, ::1] a, Py_ssize_t h0, Py_ssize_t h1, Py_ssize_t h2):
    """The box dilation of a 0/1 uint8 volume by half-widths (h0, h1, h2), uint8 0/1: each voxel
    the maximum over the box around it clipped to the array (``scipy.ndimage.maximum_filter(a,
    size=(2 h0 + 1, 2 h1 + 1, 2 h2 + 1))``, whose mirrored border adds nothing to a maximum).
    Separable; each axis by doubling shifts (radius r grows by min(r + 1, h - r) per step)."""
    cdef Py_ssize_t n0 = a.shape[0], n1 = a.shape[1], n2 = a.shape[2], size = n0 * n1 * n2
    cdef Py_ssize_t plane = n1 * n2, i, r, s, axis, h
    out_arr = np.empty((n0, n1, n2), dtype=np.uint8)
    if size == 0:
        return out_arr
    tmp_arr = np.empty(size, dtype=np.uint8)
    cdef cnp.uint8_t[:, :, ::1] out_v = out_arr
    cdef cnp.uint8_t[::1] tmp_v = tmp_arr
    cdef cnp.uint8_t* O = &out_v[0, 0, 0]
    cdef cnp.uint8_t* X = O
    cdef cnp.uint8_t* Y = &tmp_v[0]
    cdef cnp.uint8_t* t
    cdef const cnp.uint8_t* A = &a[0, 0, 0]
    with nogil:
        for i in range(size):
            X[i] = A[i]
        for axis in range(3):
            h = h0 if axis == 0 else (h1 if axis == 1 else h2)
            r = 0
            while r < h:
                s = min(r + 1, h - r)  # x - s stays within r of the voxel that reaches x: inside the array
                if axis == 0:
                    _dilate_flat(X, Y, size, plane, s)
                elif axis == 1:
                    for i in range(n0):
                        _dilate_flat(X + i * plane, Y + i * plane, plane, n2, s)
                else:
                    for i in range(n0 * n1):
                        _dilate_flat(X + i * n2, Y + i * n2, n2, 1, s)
                t = X; X = Y; Y = t
                r += s
        if X != O:  # the result ended in the scratch buffer
            for i in range(size):
                O[i] = X[i]
    return out_arr


def code_histogram(
    const cnp.uint8_t[:, :, :] code, const value_t[:, :, :] values, cnp.int64_t lo, Py_ssize_t nbins,
    Py_ssize_t n_codes,
):
    """Histogram of ``values - lo`` per code ``1..n_codes``, int64 (n_codes + 1, nbins) (row 0 and
    codes above n_codes: not counted); every value of a counted voxel must lie in
    [lo, lo + nbins). Definition: ``np.bincount(values[code == c] - lo, minlength=nbins)``. Strided
    views in any memory order (fastest along the last axis); fewer than 2**31 voxels.

    The values of each plane (first index) are first copied to a contiguous buffer: streaming a box
    out of a larger volume, then counting from cache, is ~1.6x faster than counting from the
    strided rows directly (the scattered increments hinder the prefetch of the strided reads)."""
    cdef Py_ssize_t n0 = code.shape[0], n1 = code.shape[1], n2 = code.shape[2], i, j, k
    hist_arr = np.zeros((n_codes + 1) * max(nbins, 1), dtype=np.int32)
    cdef cnp.int32_t[::1] hist_v = hist_arr
    cdef cnp.int32_t* H = &hist_v[0]
    cdef Py_ssize_t sc = code.strides[2], sv = values.strides[2] // sizeof(value_t)
    cdef const cnp.uint8_t* C
    cdef const value_t* V
    cdef value_t* B
    cdef value_t* R
    cdef cnp.uint8_t c
    buf_arr = np.empty(max(n1 * n2, 1) * sizeof(value_t), dtype=np.uint8)
    cdef cnp.uint8_t[::1] buf_v = buf_arr
    B = <value_t*> &buf_v[0]
    with nogil:
        if n2 > 0:
            for i in range(n0):
                for j in range(n1):  # the plane's values, contiguous
                    V = &values[i, j, 0]
                    R = B + j * n2
                    if sv == 1:
                        memcpy(R, V, n2 * sizeof(value_t))
                    else:
                        for k in range(n2):
                            R[k] = V[k * sv]
                for j in range(n1):
                    C = &code[i, j, 0]
                    R = B + j * n2
                    if sc == 1:
                        for k in range(n2):
                            c = C[k]
                            if c == 0 or c > n_codes:
                                continue
                            H[<Py_ssize_t>c * nbins + <Py_ssize_t>(R[k] - lo)] += 1
                    else:
                        for k in range(n2):
                            c = C[k * sc]
                            if c == 0 or c > n_codes:
                                continue
                            H[<Py_ssize_t>c * nbins + <Py_ssize_t>(R[k] - lo)] += 1
    return hist_arr.reshape(n_codes + 1, max(nbins, 1))[:, :nbins].astype(np.int64)


def value_range(const value_t[:, :, :] values):
    """(min, max) of an integer volume in one pass (``int(values.min()), int(values.max())``);
    a strided view in any memory order (fastest along its last axis); None when empty."""
    cdef Py_ssize_t n0 = values.shape[0], n1 = values.shape[1], n2 = values.shape[2], i, j, k
    cdef Py_ssize_t sv = values.strides[2] // sizeof(value_t)
    cdef const value_t* V
    cdef value_t lo, hi, x
    if n0 * n1 * n2 == 0:
        return None
    lo = values[0, 0, 0]
    hi = lo
    with nogil:
        for i in range(n0):
            for j in range(n1):
                V = &values[i, j, 0]
                if sv == 1:
                    for k in range(n2):  # vectorised
                        x = V[k]
                        lo = x if x < lo else lo
                        hi = x if x > hi else hi
                else:
                    for k in range(n2):
                        x = V[k * sv]
                        lo = x if x < lo else lo
                        hi = x if x > hi else hi
    return int(lo), int(hi)


ctypedef cnp.uint64_t word_t

cdef enum:
    PF_ROWS = 8  # rows ahead whose bytes are prefetched (the box rows are strided: no stream for the hardware)


cdef inline word_t _bits_shifted(const word_t* X, Py_ssize_t n, Py_ssize_t c, Py_ssize_t q, int b) noexcept nogil:
    """Word ``c`` of ``X | X << s | X >> s`` (s = 64 q + b, 0 < b < 64) over a flat line of ``n``
    words, the bits shifted past its ends left out."""
    cdef word_t y = X[c]
    if c - q >= 0:
        y = y | (X[c - q] << b)
    if c - q - 1 >= 0:
        y = y | (X[c - q - 1] >> (64 - b))
    if c + q < n:
        y = y | (X[c + q] >> b)
    if c + q + 1 < n:
        y = y | (X[c + q + 1] << (64 - b))
    return y


cdef void _bits_dilate_step(const word_t* X, word_t* Y, Py_ssize_t n, Py_ssize_t s) noexcept nogil:
    """``Y`` = ``X`` | ``X`` shifted by ``s`` bits up | down, over one flat line of ``n`` words (bit
    ``b`` of word ``c`` at ``64 c + b``; bits shifted past the line's ends left out)."""
    cdef Py_ssize_t c, q = s >> 6, e
    cdef int b = s & 63
    if b == 0:
        for c in range(n):
            Y[c] = X[c] | (X[c - q] if c >= q else 0) | (X[c + q] if c + q < n else 0)
        return
    e = max(q + 1, n - q - 1)  # words [q + 1, n - q - 1) read no word past an end
    for c in range(min(q + 1, n)):
        Y[c] = _bits_shifted(X, n, c, q, b)
    for c in range(q + 1, n - q - 1):  # vectorised
        Y[c] = (X[c] | (X[c - q] << b) | (X[c - q - 1] >> (64 - b)) | (X[c + q] >> b)
                | (X[c + q + 1] << (64 - b)))
    for c in range(e, n):
        Y[c] = _bits_shifted(X, n, c, q, b)


cdef void _blocks_dilate_step(const word_t* X, word_t* Y, Py_ssize_t m, Py_ssize_t d) noexcept nogil:
    """``Y`` = ``X`` | ``X`` shifted by ``d`` words up | down, over ``m`` words (shifts beyond the
    ends left out)."""
    cdef Py_ssize_t c
    if d >= m:
        for c in range(m):
            Y[c] = X[c]
        return
    for c in range(min(d, m - d)):
        Y[c] = X[c] | X[c + d]
    for c in range(m - d, d):  # (a shift by more than half the line: neither neighbour)
        Y[c] = X[c]
    for c in range(d, m - d):  # vectorised
        Y[c] = X[c - d] | X[c] | X[c + d]
    for c in range(max(d, m - d), m):
        Y[c] = X[c - d] | X[c]


cdef const word_t* _dilate_words(
    const word_t* src, word_t* X, word_t* Y, Py_ssize_t m, Py_ssize_t inner, Py_ssize_t h, bint bits
) noexcept nogil:
    """The box dilation by ``h`` of ``src`` (``m`` words): along its flat bit line (``bits``) or of
    its blocks of ``inner`` words, by doubling shifts as :func:`dilate_box`; the steps in ``X`` and
    ``Y`` in turn, the result where the returned pointer points (``src`` when ``h`` is 0)."""
    cdef Py_ssize_t r = 0, s
    cdef const word_t* cur = src
    cdef word_t* t
    while r < h:
        s = min(r + 1, h - r)
        if bits:
            _bits_dilate_step(cur, X, m, s)
        else:
            _blocks_dilate_step(cur, X, m, s * inner)
        cur = X
        t = X; X = Y; Y = t
        r += s
    return cur


cdef enum:
    _SCAN = 64  # bins tested at once for a non-zero count


cdef Py_ssize_t _first_nonzero(const cnp.uint32_t* H, const cnp.uint32_t* H2, Py_ssize_t n) noexcept nogil:
    """The first bin ``b < n`` with ``H[b] + H2[b] > 0`` (``n`` if none): blocks of ``_SCAN`` bins
    tested by a vectorised OR, then the block found bin by bin."""
    cdef Py_ssize_t b0 = 0, b
    cdef cnp.uint32_t acc
    while b0 < n:
        acc = 0
        for b in range(b0, min(b0 + _SCAN, n)):
            acc = acc | H[b] | H2[b]
        if acc:
            for b in range(b0, min(b0 + _SCAN, n)):
                if H[b] | H2[b]:
                    return b
        b0 += _SCAN
    return n


cdef Py_ssize_t _last_nonzero(const cnp.uint32_t* H, const cnp.uint32_t* H2, Py_ssize_t n) noexcept nogil:
    """The last bin ``b < n`` with ``H[b] + H2[b] > 0`` (-1 if none), as :func:`_first_nonzero`
    from the top."""
    cdef Py_ssize_t b0, b
    cdef cnp.uint32_t acc
    b0 = ((n - 1) // _SCAN) * _SCAN
    while b0 >= 0:
        acc = 0
        for b in range(b0, min(b0 + _SCAN, n)):
            acc = acc | H[b] | H2[b]
        if acc:
            for b in range(min(b0 + _SCAN, n) - 1, b0 - 1, -1):
                if H[b] | H2[b]:
                    return b
        b0 -= _SCAN
    return -1


cdef int _shell_count(
    const anylabel_t[:, :, :] ids, const value_t[:, :, :] values, Py_ssize_t h0, Py_ssize_t h1,
    Py_ssize_t h2, cnp.int64_t lo, cnp.uint32_t* H, cnp.uint32_t* H2, Py_ssize_t nbins, Py_ssize_t* first,
    Py_ssize_t* last,
) except -1:
    """Add the shell's value counts (bins ``value - lo``) to ``H`` and ``H2`` (voxels in turn along
    each run) and set [first, last] to the range of the bins counted (first > last when none); see
    :func:`shell_histogram_range`."""
    cdef Py_ssize_t n0 = ids.shape[0], n1 = ids.shape[1], n2 = ids.shape[2]
    cdef Py_ssize_t i, j, k, w, q, p, row, nw, a, b
    first[0] = 1
    last[0] = 0
    if n0 == 0 or n1 == 0 or n2 == 0:
        return 0
    # a dilation by more than the extent minus one is the dilation by it
    h0 = min(h0, n0 - 1)
    h1 = min(h1, n1 - 1)
    h2 = min(h2, n2 - 1)
    # each row as nw words with at least h2 zero bits after its n2: the dilation of a plane's rows
    # as one flat bit line by h2 is then every row's own (a shift by <= h2 moves no bit of a row
    # into another row's first n2 bits)
    nw = (n2 + h2 + 63) >> 6
    cdef Py_ssize_t pw = n1 * nw, nb = min(h0 + 1, n0), nd = min(2 * h0 + 1, n0)
    # rings: the inside bits of planes q .. q + h0, the in-plane dilations of planes q - h0 .. q + h0
    bits_arr = np.empty((nb + nd + 3) * pw, dtype=np.uint64)
    row_arr = np.empty(n2, dtype=np.uint8)
    mask_arr = np.zeros(nw, dtype=np.uint64)  # the row's first n2 bits
    cdef word_t[::1] bits_v = bits_arr, mask_v = mask_arr
    cdef cnp.uint8_t[::1] row_v = row_arr
    cdef word_t* BR = &bits_v[0]
    cdef word_t* DR = BR + nb * pw
    cdef word_t* P1 = DR + nd * pw
    cdef word_t* P2 = P1 + pw
    cdef word_t* G = P2 + pw
    cdef word_t* B
    cdef word_t* D
    cdef const word_t* X
    cdef word_t* M = &mask_v[0]
    cdef cnp.uint8_t* T = &row_v[0]
    cdef word_t s_word, acc, inv
    cdef word_t S[64]
    cdef word_t* Sp
    cdef Py_ssize_t si = ids.strides[2] // sizeof(anylabel_t), sv = values.strides[2] // sizeof(value_t)
    cdef const anylabel_t* L
    cdef const value_t* V
    cdef bint any_shell = False
    s_arr = None
    if nw > 64:
        s_arr = np.empty(nw, dtype=np.uint64)
    cdef word_t[::1] s_v
    if s_arr is not None:
        s_v = s_arr
        Sp = &s_v[0]
    else:
        Sp = S
    for k in range(n2):
        M[k >> 6] = M[k >> 6] | ((<word_t>1) << (k & 63))
    with nogil:
        for q in range(-h0, n0):
            i = q + h0  # plane i enters: its bits and their dilation within the plane
            if i < n0:
                B = BR + (i % nb) * pw
                for j in range(n1):
                    L = &ids[i, j, 0]
                    if j + PF_ROWS < n1:
                        spm_prefetch(&ids[i, j + PF_ROWS, 0], (n2 - 1) * si * sizeof(anylabel_t) + 1)
                    if anylabel_t is cnp.uint8_t:
                        if si == 1:
                            spm_pack_nonzero(<const cnp.uint8_t*> L, n2, B + j * nw, nw)
                            continue
                    if si == 1:
                        for k in range(n2):  # vectorised
                            T[k] = L[k] != 0
                    else:
                        for k in range(n2):
                            T[k] = L[k * si] != 0
                    spm_pack_nonzero(T, n2, B + j * nw, nw)
                X = _dilate_words(B, P1, P2, pw, 1, h2, True)
                X = _dilate_words(X, P2 if X == P1 else P1, P1 if X == P1 else P2, pw, nw, h1, False)
                D = DR + (i % nd) * pw
                for w in range(pw):
                    D[w] = X[w]
            if q < 0:
                continue
            # plane q: its dilation across the planes q - h0 .. q + h0
            for w in range(pw):
                G[w] = 0
            for p in range(max(0, q - h0), min(n0, q + h0 + 1)):
                D = DR + (p % nd) * pw
                for w in range(pw):  # vectorised
                    G[w] = G[w] | D[w]
            B = BR + (q % nb) * pw
            # the shell (dilated, not inside, within the row's n2) run by run, its values counted
            for j in range(n1):
                row = j * nw
                acc = 0
                for w in range(nw):
                    s_word = G[row + w] & ~B[row + w] & M[w]
                    Sp[w] = s_word
                    acc = acc | s_word
                if j + PF_ROWS < n1:
                    spm_prefetch(&values[q, j + PF_ROWS, 0], (n2 - 1) * sv * sizeof(value_t) + 1)
                if acc == 0:
                    continue
                V = &values[q, j, 0]
                w = 0
                s_word = Sp[0]
                while True:
                    while s_word == 0:
                        w += 1
                        if w == nw:
                            break
                        s_word = Sp[w]
                    if w == nw:
                        break
                    a = w * 64 + spm_ctz64(s_word)
                    inv = ~s_word & (~(<word_t>0) << (a & 63))
                    while inv == 0:
                        w += 1
                        if w == nw:
                            break
                        inv = ~Sp[w]
                    b = nw * 64 if w == nw else w * 64 + spm_ctz64(inv)
                    b = min(b, n2)
                    any_shell = True
                    if sv == 1:
                        k = a
                        while k + 1 < b:
                            H[<Py_ssize_t>(V[k] - lo)] += 1
                            H2[<Py_ssize_t>(V[k + 1] - lo)] += 1
                            k += 2
                        if k < b:
                            H[<Py_ssize_t>(V[k] - lo)] += 1
                    else:
                        for k in range(a, b):
                            H[<Py_ssize_t>(V[k * sv] - lo)] += 1
                    if w == nw or b >= n2:
                        break
                    s_word = Sp[w] & (~(<word_t>0) << (b & 63))
        if any_shell:  # the range of the bins counted, from the histograms
            first[0] = _first_nonzero(H, H2, nbins)
            last[0] = _last_nonzero(H, H2, nbins)
    return 0


def shell_histogram(ids, values, Py_ssize_t h0, Py_ssize_t h1, Py_ssize_t h2, cnp.int64_t lo, Py_ssize_t nbins):
    """Histogram of ``values - lo`` over the shell of ``ids != 0``: the voxels of its box dilation by
    half-widths (h0, h1, h2), clipped to the array, that are not themselves ``ids != 0``; int64
    (nbins,). Definition: ``grown = scipy.ndimage.maximum_filter(ids != 0, size=(2 h0 + 1, 2 h1 +
    1, 2 h2 + 1))``, ``np.bincount(values[grown & (ids == 0)] - lo, minlength=nbins)``; every such
    value must lie in [lo, lo + nbins). Strided views (fastest along the last axis, e.g. the box of
    a C-contiguous volume or of a Fortran-ordered one's reversed view); fewer than 2**31 voxels.
    :func:`shell_histogram_range` placed in the nbins."""
    first, counts = shell_histogram_range(ids, values, h0, h1, h2, lo, nbins)
    out = np.zeros(max(nbins, 1), dtype=np.int64)
    out[first:first + counts.shape[0]] = counts
    return out[:nbins]


def shell_histogram_range(
    const anylabel_t[:, :, :] ids, const value_t[:, :, :] values, Py_ssize_t h0, Py_ssize_t h1,
    Py_ssize_t h2, cnp.int64_t lo, Py_ssize_t nbins,
):
    """:func:`shell_histogram` from its first to its last non-zero bin: ``(first, counts)``, ``counts``
    int64 with ``counts[b]`` the shell voxels of value ``lo + first + b`` (its ends non-zero);
    ``(0, empty)`` when the shell is empty. Same arguments and conditions as :func:`shell_histogram`.

    One sweep over the planes (first index) with buffers of a few planes as bits (each row of the
    last axis in words, with room for its dilation): each plane's ids != 0 packed (16 bytes a step),
    dilated within the plane by doubling shifts (its rows as one flat bit line, then whole rows) into
    a ring of the last 2 h0 + 1 planes, their OR over the window of plane q (the planes q - h0 .. q +
    h0: O(h0) words per voxel / 64), and plane q's shell taken row by row as runs of bits, each run's
    values counted straight from the view into two interleaved uint32 histograms (no dependency
    between neighbours of equal value); the rows ahead prefetched. The range is then found by
    testing 64 bins at a time from each end, and only it is summed into the int64 counts."""
    cdef Py_ssize_t first, last, b, nb = max(nbins, 1)
    hist_arr = np.zeros(2 * nb, dtype=np.uint32)
    cdef cnp.uint32_t[::1] hist_v = hist_arr
    cdef cnp.uint32_t* H = &hist_v[0]
    _shell_count(ids, values, h0, h1, h2, lo, H, H + nb, nb, &first, &last)
    if first > last:
        return 0, np.zeros(0, dtype=np.int64)
    out_arr = np.empty(last - first + 1, dtype=np.int64)
    cdef cnp.int64_t[::1] out_v = out_arr
    for b in range(first, last + 1):
        out_v[b - first] = <cnp.int64_t>H[b] + <cnp.int64_t>H[nb + b]
    return int(first), out_arr

def labels_with_code(
    const cnp.uint8_t[:, :, ::1] code, const label_t[:, :, ::1] lab, Py_ssize_t n_ids, int bits=0xFF
):
    """Which labels ``1..n_ids`` hold a voxel whose ``code & bits`` is non-zero: bool (n_ids + 1,),
    entry 0 False. Definition: ``np.bincount(lab[code & bits != 0], minlength=n_ids + 1)[:n_ids + 1]
    > 0`` with entry 0 set False. Rows without such a
    code are skipped after a vectorised test, and the scan stops once every label ``1..n_ids`` is
    found (e.g. the vertebrae with a voxel deeper than ``seed_depth_mm``)."""
    cdef Py_ssize_t n0 = code.shape[0], n1 = code.shape[1], n2 = code.shape[2], r, k
    seen_arr = np.zeros(max(n_ids + 1, 1), dtype=np.uint8)
    if n0 * n1 * n2 == 0 or n_ids < 0:
        return seen_arr[: n_ids + 1].view(np.bool_)
    cdef cnp.uint8_t[::1] seen_v = seen_arr
    cdef cnp.uint8_t* S = &seen_v[0]
    cdef const cnp.uint8_t* C0 = &code[0, 0, 0]
    cdef const label_t* L0 = &lab[0, 0, 0]
    cdef const cnp.uint8_t* C
    cdef cnp.uint8_t any_, mask = <cnp.uint8_t>bits
    cdef label_t v
    cdef Py_ssize_t remaining = n_ids
    with nogil:
        for r in range(n0 * n1):
            C = C0 + r * n2
            any_ = 0
            for k in range(n2):  # vectorised
                any_ = any_ | (C[k] & mask)
            if any_ == 0:
                continue
            for k in range(n2):
                if (C[k] & mask) != 0:
                    v = L0[r * n2 + k]
                    if v != 0 and <Py_ssize_t>v <= n_ids and S[v] == 0:
                        S[v] = 1
                        remaining -= 1
            if remaining <= 0:
                break
    return seen_arr[: n_ids + 1].view(np.bool_)


def edge_rings(
    const label_t[:, :, ::1] lab, const cnp.uint8_t[:, :, ::1] deep, const Py_ssize_t[::1] idx,
    const Py_ssize_t[::1] bounds, const Py_ssize_t[:, ::1] rows, int deep_bits=0xFF,
):
    """The ring of each component: the labelled voxels (``lab > 0``) at an offset of a ball from
    one of its voxels, not in it (its dilation by the ball, less itself, in the vertebrae).

    Component ``g`` is ``idx[bounds[g]:bounds[g + 1]]`` (flat C-order indices of ``lab``'s array,
    ascending). The ball is given by its rows along the last axis: row ``(d0, d1, w)`` holds the
    offsets ``(d0, d1, -w..w)`` (a ball's offsets with the first two fixed are such an interval;
    ``component_rules.ring_rows``). Returns ``(ring, is_deep, ring_bounds)``: component ``g``'s
    ring is ``ring[ring_bounds[g]:ring_bounds[g + 1]]`` (ascending), ``is_deep`` (uint8 0/1)
    whether each ring voxel has ``deep & deep_bits != 0`` (all 0 when ``deep`` is not of ``lab``'s
    shape; e.g. a bool volume, or the segmentation's code with its ``DEEP_BIT``).

    Definition, with the ball of the grid points at distance <= r: the voxels with
    ``0 < scipy.ndimage.distance_transform_edt(~component, sampling) <= r`` and ``lab > 0``. The
    component's runs along the last axis are dilated row by row of the ball: each run, widened by
    ``w``, is marked in the row ``(d0, d1)`` away, in a mark box around the component.
    """
    cdef Py_ssize_t n0 = lab.shape[0], n1 = lab.shape[1], n2 = lab.shape[2]
    cdef Py_ssize_t n_g = bounds.shape[0] - 1, m = rows.shape[0]
    cdef bint has_deep = deep.shape[0] == n0 and deep.shape[1] == n1 and deep.shape[2] == n2
    cdef Py_ssize_t g, t, u, x, i, j, k, a0, a1, a2, b0, b1, b2, l1, l2, size, y, q, total = 0
    cdef Py_ssize_t p0 = 0, p1 = 0, p2 = 0, ii, jj, kk, ka, kb, w, base
    cdef cnp.uint8_t dmask = <cnp.uint8_t>deep_bits
    for q in range(m):
        p0 = max(p0, abs(rows[q, 0]))
        p1 = max(p1, abs(rows[q, 1]))
        p2 = max(p2, rows[q, 2])
    rb_arr = np.zeros(max(n_g, 0) + 1, dtype=np.intp)
    cdef Py_ssize_t[::1] rb = rb_arr
    parts = []
    cdef cnp.uint8_t[::1] mark
    cdef Py_ssize_t[::1] out
    cdef cnp.uint8_t[::1] outd
    for g in range(n_g):
        if bounds[g + 1] <= bounds[g]:
            rb[g + 1] = total
            continue
        # the component's box, padded by the ball's reach
        a0 = n0; a1 = n1; a2 = n2; b0 = -1; b1 = -1; b2 = -1
        for t in range(bounds[g], bounds[g + 1]):
            x = idx[t]
            i = x // (n1 * n2); j = (x // n2) % n1; k = x % n2
            a0 = min(a0, i); a1 = min(a1, j); a2 = min(a2, k)
            b0 = max(b0, i); b1 = max(b1, j); b2 = max(b2, k)
        a0 = max(a0 - p0, 0); a1 = max(a1 - p1, 0); a2 = max(a2 - p2, 0)
        b0 = min(b0 + p0 + 1, n0); b1 = min(b1 + p1 + 1, n1); b2 = min(b2 + p2 + 1, n2)
        l1 = b1 - a1; l2 = b2 - a2
        size = (b0 - a0) * l1 * l2
        mark_arr = np.zeros(size, dtype=np.uint8)  # 1: the component, 2: its ring
        mark = mark_arr
        with nogil:
            for t in range(bounds[g], bounds[g + 1]):
                x = idx[t]
                i = x // (n1 * n2); j = (x // n2) % n1; k = x % n2
                mark[((i - a0) * l1 + (j - a1)) * l2 + (k - a2)] = 1
            t = bounds[g]
            while t < bounds[g + 1]:
                # a run: consecutive indices in one row (ascending idx)
                x = idx[t]
                u = t + 1
                while u < bounds[g + 1] and idx[u] == idx[u - 1] + 1 and idx[u] % n2 != 0:
                    u += 1
                i = x // (n1 * n2); j = (x // n2) % n1; k = x % n2
                ka = k
                kb = k + (u - t)  # the run is k .. kb - 1
                for q in range(m):
                    ii = i + rows[q, 0]
                    jj = j + rows[q, 1]
                    if ii < 0 or ii >= n0 or jj < 0 or jj >= n1:
                        continue
                    w = rows[q, 2]
                    base = ((ii - a0) * l1 + (jj - a1)) * l2 - a2
                    for kk in range(max(ka - w, 0), min(kb + w, n2)):
                        if mark[base + kk] == 0:
                            mark[base + kk] = 2
                t = u
        # the ring in C order: marked voxels in the vertebrae
        with nogil:
            q = 0
            for ii in range(b0 - a0):
                for jj in range(l1):
                    base = (ii * l1 + jj) * l2
                    for kk in range(l2):
                        if mark[base + kk] == 2:
                            if lab[ii + a0, jj + a1, kk + a2] != 0:
                                q += 1
                            else:
                                mark[base + kk] = 0
        ring_arr = np.empty(q, dtype=np.intp)
        deep_arr = np.zeros(q, dtype=np.uint8)
        out = ring_arr
        outd = deep_arr
        with nogil:
            q = 0
            for ii in range(b0 - a0):
                for jj in range(l1):
                    base = (ii * l1 + jj) * l2
                    for kk in range(l2):
                        if mark[base + kk] == 2:
                            out[q] = ((ii + a0) * n1 + (jj + a1)) * n2 + (kk + a2)
                            if has_deep and (deep[ii + a0, jj + a1, kk + a2] & dmask) != 0:
                                outd[q] = 1
                            q += 1
        parts.append((ring_arr, deep_arr))
        total += q
        rb[g + 1] = total
    if not parts:
        return np.zeros(0, dtype=np.intp), np.zeros(0, dtype=np.uint8), rb_arr
    return (
        np.concatenate([r for r, _ in parts]), np.concatenate([d for _, d in parts]), rb_arr
    )
