"""Peak memory of the QC sheet and the case viewer, and their pictures unchanged by the memory work.

Issue 13 Deliver 6: ``spinemri measure IMAGE --mask MASK --out DIR`` peaks at <= imports + 3x the
image's bytes. While the renderers run, the case holds the image (int16: 1x), the label mask and
the lesion ids (uint8: 0.5x each), 2x in all; so each renderer may add about 1x at most, and the
part that grows with the volume (one slice of scratch) well under that. The bounds below:

* on a 384x384x30 int16 Fortran-ordered phantom (8.8 MB; NIfTI as nibabel loads it) each
  renderer peaks (tracemalloc, over its entry) at <= 0.7x the image's bytes: ~2-4 MB that do not
  depend on the volume's size (the 640-pixel overview, the sheet's panels, the 1 M-voxel
  subsample for the grey window). Measured 0.49x (QC sheet) and 0.31x (viewer); 0.95x and 0.80x
  while the renderers took a full-size uint8 vertebra-id volume (0.5x), 5.6x and 4.0x before
  they worked slice by slice. (Pillow's canvases are not traced: the sheet's is ~8 MB whatever
  the volume.)
* from 30 to 60 slices the peak less the returned PNG or page (the viewer's page grows with the
  slices by construction, one JPEG each: ~0.1 byte per image byte) grows by <= 0.1 byte per added
  image byte: the vertebra ids are looked up from the mask slice by slice
  (:class:`spinemri.report._raster.LabelLookup`), and no full-size copy of any dtype is made (a
  uint8 one is 0.5). Measured 0.00 for both (0.50 with the id volume). The ``str`` page
  (:func:`measurement_viewer_html`, not used by the pipeline) may grow by 0.3 (measured 0.16): it
  also holds its pieces while joining them into a two-bytes-a-character ``str``.

The identity test compares the PNG and the page with SHA-256 digests recorded on the code before
the change (commit f8c1b87) for phantoms covering C and Fortran order, int16, uint16 and float32
images, permuted axes, more lesion slices than the sheet shows and a slice larger than the
viewer's 768 pixels; the digests depend on Pillow's PNG/JPEG coders, so they are checked with the
versions they were recorded with (skipped, with the reason, elsewhere).
"""

from __future__ import annotations

import functools
import hashlib
import sys
import tracemalloc
import warnings
import zlib
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import spinemri
from spinemri import Volume
from spinemri.report import _raster
from spinemri.report.qc import measurement_qc_png
from spinemri.report.viewer import measurement_viewer_bytes, measurement_viewer_html

# --------------------------------------------------------------------------- phantoms

#: name -> (make_phantom options, how the arrays are handed over)
CASES: dict[str, tuple[dict[str, Any], str]] = {
    "default_C": ({"seed": 3, "rows": 192, "cols": 96, "n_slices": 9, "first_level": "T10"}, "C"),
    "many_slices_F": (
        {
            "seed": 5,
            "rows": 96,
            "cols": 64,
            "n_slices": 40,
            "slice_mm": 1.0,
            "first_level": "L1",
            "n_involved": 4,
            "radius_mm": (6.0, 8.0),
        },
        "F",
    ),
    "step2_C_float": ({"seed": 7, "rows": 384, "cols": 384, "n_slices": 15, "first_level": "T12"}, "Cfloat"),
    "step4_F_int16": (
        {"seed": 13, "rows": 384, "cols": 384, "n_slices": 30, "supersample": 1, "first_level": "T11"},
        "Fint16",
    ),
    "step4_F_uint16": (
        {"seed": 14, "rows": 384, "cols": 384, "n_slices": 30, "supersample": 1, "first_level": "T11"},
        "Fuint16",
    ),
    "tall_F_perm": (
        {"seed": 11, "rows": 800, "cols": 96, "n_slices": 15, "pixel_mm": 0.6, "first_level": "T6"},
        "Fperm",
    ),
}

#: SHA-256 of measurement_qc_png and of measurement_viewer_html (UTF-8) at commit f8c1b87,
#: before the memory work, with Pillow 13.0.0 (zlib 1.2.13, libjpeg 6.2) and numpy 2.4.6.
RECORDED_WITH = {"pillow": "13.0.0", "zlib": "1.2.13", "jpg": "6.2"}
DIGESTS = {
    "default_C": (
        "9b7ce7d04821bb5d3d6a7276939b43e6beb08b6a4fe40a29973bb6b8c96f4058",
        "0e81d4e63e17cddba050617da6dd315e20ab250e7608a4b5949910e2255f330d",
    ),
    "many_slices_F": (
        "a4683bd0306973fda5f693e3bd44cf36ab2388c254e7c3ab28733c4a1ef8bc48",
        "d8518e31ecfde9f0d4a98e84b6fccfdc42ddb2899d5e75e34278f51b79199a69",
    ),
    "step2_C_float": (
        "8782a6e994275672dc037d54739fea93c6f481acb423e69e66be94fddad2cde0",
        "9eb6cc0111f5b3a24927d1849affd14779858d9a02328d70e918ee3614c0f9a0",
    ),
    "step4_F_int16": (
        "72e11810d8987b7239ce75732dbfbcd4f8341e198540b84fd34f93dfbd772bd6",
        "d0ddc41c824a83263518b65361c15a35f20c7818baa35ffd3f72d61042e4a697",
    ),
    "step4_F_uint16": (
        "eb6f09c50f0a1c221f0a12f2434fcca748bb11bf717e2215d28cde1dcc217f7d",
        "7ce719709e0affbc7f6aeace9034a1d6dd28b30845f8907fedaea51e6d194321",
    ),
    "tall_F_perm": (
        "7c0f06185ebb629e11d149d6dda945a3e3c509669957628f5ff4bb215a072138",
        "b59f9416b7bf57aef12f14928af629ce42b1167864ce8596e9ba10b2bd6cae36",
    ),
}


@functools.lru_cache(maxsize=2)
def _build(name: str) -> tuple[Volume, Volume, Any]:
    opts, how = CASES[name]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        img, mask, _ = spinemri.make_phantom(**opts)
        if how == "Cfloat":
            img = img.with_data(np.asarray(img.data, np.float32) * np.float32(1.37))
        if how in ("Fint16", "Fuint16"):
            img = img.with_data(np.asarray(img.data).astype(how[1:]))
        if how != "C" and how != "Cfloat":  # Fortran order, as nibabel hands NIfTI over
            img = img.with_data(np.asfortranarray(img.data))
            mask = mask.with_data(np.asfortranarray(mask.data))
        if how == "Fperm":  # the same picture with the array axes permuted (affine columns with them)
            p = [2, 0, 1]
            aff = np.asarray(img.affine).copy()
            aff[:, :3] = aff[:, p]
            img = Volume(np.transpose(np.asarray(img.data), p), aff, meta=dict(img.meta))
            mask = Volume(np.transpose(np.asarray(mask.data), p), aff, meta=dict(mask.meta))
        m = spinemri.measure(img, mask, patient_id="P1")
    return img, mask, m


def _env() -> dict[str, str]:
    import PIL
    from PIL import features

    return {"pillow": PIL.__version__, "zlib": zlib.ZLIB_RUNTIME_VERSION, "jpg": str(features.version("jpg"))}


# --------------------------------------------------------------------------- identity


@pytest.mark.parametrize("name", sorted(CASES))
def test_pictures_and_page_are_byte_identical_to_before(name: str) -> None:
    if _env() != RECORDED_WITH:
        pytest.skip(f"digests recorded with {RECORDED_WITH}, this environment has {_env()}")
    img, mask, m = _build(name)
    png = measurement_qc_png(img, mask, m)
    page = measurement_viewer_html(img, mask, m)
    qc_digest, page_digest = DIGESTS[name]
    assert hashlib.sha256(png).hexdigest() == qc_digest
    assert hashlib.sha256(page.encode("utf-8")).hexdigest() == page_digest
    # the pipeline's bytes are the page's UTF-8, byte for byte
    assert measurement_viewer_bytes(img, mask, m) == page.encode("utf-8")


def test_the_cases_exercise_what_they_are_named_for() -> None:
    """Guard against a phantom change silently weakening the identity test."""
    img, _, m = _build("step4_F_int16")
    assert img.data.dtype == np.int16 and img.data.flags.f_contiguous and not img.data.flags.c_contiguous
    assert img.data.size // 1_000_000 >= 4  # the grey window's subsample skips voxels
    img, _, m = _build("many_slices_F")
    les = np.asarray(m.lesion_mask.data) > 0
    from spinemri.report.qc_sheet import MAX_SLICES

    assert np.count_nonzero(les.any(axis=tuple(a for a in range(3) if a != img.lr_axis))) > MAX_SLICES


# --------------------------------------------------------------------------- the helpers, exactly


@pytest.mark.parametrize("dtype", ["uint8", "int8", "uint16", "int16", "int32", "uint32", "float32"])
def test_percentiles_in_the_native_dtype_equal_the_float64_ones(dtype: str, rng: np.random.Generator) -> None:
    info = np.iinfo(dtype) if np.dtype(dtype).kind in "iu" else None
    for trial in range(40):
        n = int(rng.integers(1, 3000))
        if info is None:
            a = (rng.standard_normal(n) * 10 ** rng.uniform(-3, 6)).astype(dtype)
        elif trial % 4 == 0:  # the dtype's extremes: b - a would wrap in the dtype
            a = rng.choice(np.array([info.min, info.max, 0], dtype=dtype), n)
        else:
            lo = int(rng.integers(info.min, info.max // 2 + 1))
            a = rng.integers(lo, info.max, n, endpoint=True).astype(dtype)
        q = [1.0, 99.5]
        want = np.percentile(a.astype(np.float64), q)
        got = _raster._percentiles(a.copy(), q)
        assert got.tobytes() == np.asarray(want, np.float64).tobytes()


def test_c_order_subsample_is_ravel_step(rng: np.random.Generator) -> None:
    for shape in [(7, 5, 3), (1, 9, 4), (13, 1, 1), (6, 11, 17)]:
        a = rng.integers(-500, 500, shape).astype(np.int16)
        for arr in (a, np.asfortranarray(a), a.transpose(2, 0, 1), a[:, ::2, 1:]):
            for step in (1, 2, 3, 7, 50, 10_000):
                got = _raster.c_order_subsample(arr, step)
                want = arr.ravel()[::step]
                assert got.dtype == arr.dtype and np.array_equal(got, want)
                assert not np.shares_memory(got, arr)


def test_grey_and_outline_equal_their_expressions(rng: np.random.Generator) -> None:
    v = rng.integers(-2000, 3000, (37, 23)).astype(np.int16)
    for lo, hi in [(-100.0, 1500.0), (3.25, 3.5), (0.0, 1.0)]:
        want = (np.clip((v.astype(np.float64) - lo) / (hi - lo), 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
        assert np.array_equal(_raster.grey(v, lo, hi), want)
    lab = rng.integers(0, 3, (19, 31)).astype(np.uint8)
    pad = np.pad(lab, 1, mode="edge")
    want_edge = (lab > 0) & (
        (pad[:-2, 1:-1] != lab) | (pad[2:, 1:-1] != lab) | (pad[1:-1, :-2] != lab) | (pad[1:-1, 2:] != lab)
    )
    assert np.array_equal(_raster.outline(lab), want_edge)


# --------------------------------------------------------------------------- peak memory


def _peak_over_entry(fn: Callable[[], Any]) -> tuple[int, int]:
    """tracemalloc's high-water mark of ``fn()`` over its entry, and the size of what it returns."""
    fn()  # warm: lazy imports, fonts, caches are not the renderer's working memory
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        base, _ = tracemalloc.get_traced_memory()
        out = fn()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak - base, sys.getsizeof(out)


def _memory_case(n_slices: int) -> tuple[Volume, Volume, Any]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        img, mask, _ = spinemri.make_phantom(
            seed=13, rows=384, cols=384, n_slices=n_slices, supersample=1, first_level="T11"
        )
        img = img.with_data(np.asfortranarray(np.asarray(img.data).astype(np.int16)))
        mask = mask.with_data(np.asfortranarray(mask.data))
        m = spinemri.measure(img, mask, patient_id="P1")
    return img, mask, m


RENDERERS: dict[str, Callable[[Volume, Volume, Any], Any]] = {
    "qc sheet": measurement_qc_png,
    "viewer bytes (pipeline)": measurement_viewer_bytes,
    "viewer str": measurement_viewer_html,
}


def test_renderers_peak_within_bounds() -> None:
    small, large = _memory_case(30), _memory_case(60)
    for name, render in RENDERERS.items():
        peaks, sizes, nbytes = [], [], []
        for img, mask, m in (small, large):
            peak, size = _peak_over_entry(lambda: render(img, mask, m))  # noqa: B023
            peaks.append(peak)
            sizes.append(size)
            nbytes.append(np.asarray(img.data).nbytes)
        assert peaks[0] <= 0.7 * nbytes[0], (name, peaks[0] / nbytes[0])
        # working memory (the peak less the page or PNG returned, which grows with the slices
        # by construction: one JPEG per slice) grows by at most 0.1 byte per image byte: no
        # full-size volume of any dtype (the uint8 id volume alone was 0.5)
        growth = ((peaks[1] - sizes[1]) - (peaks[0] - sizes[0])) / (nbytes[1] - nbytes[0])
        # the str page (not the pipeline's path) also holds its ASCII pieces while joining them
        # into a str of two bytes a character (the page has non-ASCII characters): + ~0.15
        assert growth <= (0.3 if name == "viewer str" else 0.1), (name, growth)


@pytest.mark.parametrize("name", ["default_C", "many_slices_F", "tall_F_perm"])
def test_vertebra_lookup_gives_the_id_volumes_slices(name: str) -> None:
    """The renderers' slice-by-slice ids equal the full id volume's slices (values and dtype)."""
    from spinemri.report.qc_sheet import measurement_vertebra_ids, measurement_vertebra_lookup

    _, mask, m = _build(name)
    ids, levels = measurement_vertebra_ids(mask, m)
    lookup, levels_l = measurement_vertebra_lookup(mask, m)
    assert isinstance(lookup, _raster.LabelLookup) and levels_l == levels
    assert lookup.shape == ids.shape and lookup.dtype == ids.dtype
    for axis in range(3):
        for k in range(ids.shape[axis]):
            want = _raster.axis_slice(ids, axis, k)
            got = _raster.axis_slice(lookup, axis, k)
            assert got.dtype == want.dtype and np.array_equal(got, want)
    view = (np.s_[2:-1, 1:, ::2], 0, 1, True, False)
    assert np.array_equal(_raster.cut_slice(lookup, view), _raster.cut_slice(ids, view))
