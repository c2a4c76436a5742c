"""Bad DICOM inputs: one case per failure mode, refused with a SpinemriError naming the file or folder."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from test_dicom import AX, write_image, write_series

from spinemri import DicomError, GeometryError, InputError, load_volume

# each builder makes the bad input under tmp_path and returns
# (path to load, load kwargs, expected error class, path the message must name, message fragment)
Case = tuple[Path, dict, type, Path, str]


def truncated_pixels(tmp: Path) -> Case:
    paths, _ = write_series(tmp / "s", n=4, rows=32, cols=32)
    data = paths[2].read_bytes()
    paths[2].write_bytes(data[: len(data) - 700])
    return tmp / "s", {}, DicomError, paths[2], "truncated"


def truncated_header(tmp: Path) -> Case:
    paths, _ = write_series(tmp / "s", n=4)
    data = paths[1].read_bytes()
    paths[1].write_bytes(data[:200])  # preamble + part of the file meta
    return tmp / "s", {}, DicomError, paths[1], "corrupt"


def truncated_real_file(tmp: Path) -> Case:
    from conftest import shared_path

    src = shared_path("dcm_qa_sag_gre_sagittal", "In", "2_gre_field_mapping")
    dst = tmp / "gre"
    shutil.copytree(src, dst)
    victim = dst / "3.dcm"
    victim.write_bytes(victim.read_bytes()[:-1000])
    return dst, {}, DicomError, victim, "truncated"


def no_pixel_data(tmp: Path) -> Case:
    import pydicom

    paths, _ = write_series(tmp / "s", n=4)
    ds = pydicom.dcmread(paths[3])
    del ds.PixelData
    ds.save_as(paths[3])
    return tmp / "s", {}, DicomError, paths[3], "no PixelData"


def missing_slice(tmp: Path) -> Case:
    paths, _ = write_series(tmp / "s", n=6)
    paths[3].unlink()
    return tmp / "s", {}, DicomError, tmp / "s", "not uniform"


def non_uniform_spacing(tmp: Path) -> Case:
    folder = tmp / "s"
    folder.mkdir()
    for k, x in enumerate([0.0, -3.0, -6.0, -9.5, -12.5]):
        write_image(folder / f"{k}.dcm", np.zeros((4, 4), np.uint16), ipp=(x, 0, 0), instance=k + 1)
    return folder, {}, DicomError, folder, "not uniform"


def duplicate_positions(tmp: Path) -> Case:
    paths, _ = write_series(tmp / "s", n=5)
    write_image(tmp / "s" / "dup.dcm", np.ones((6, 4), np.uint16), ipp=(-10.0 - 2.5, 20.0, 30.0), instance=99)
    return tmp / "s", {}, DicomError, tmp / "s", "share the slice position"


def mixed_orientations(tmp: Path) -> Case:
    paths, _ = write_series(tmp / "s", n=5)
    c, s = np.cos(np.deg2rad(5)), np.sin(np.deg2rad(5))
    write_image(
        paths[2], np.zeros((6, 4), np.uint16), ipp=(-15.0, 20.0, 30.0), iop=(0, c, s, 0, s, -c), instance=3
    )
    return tmp / "s", {}, DicomError, tmp / "s", "different orientations"


def _bad_header(tmp: Path, **kw) -> Case:
    folder = tmp / "s"
    paths, _ = write_series(folder, n=3)
    write_image(
        paths[1], np.zeros((6, 4), np.uint16), ipp=kw.pop("ipp", (-12.5, 20.0, 30.0)), instance=2, **kw
    )
    return folder, {}, DicomError, paths[1], kw.pop("_frag", "")


def zero_pixel_spacing(tmp: Path) -> Case:
    return _bad_header(tmp, pixel_spacing=(0.0, 0.8))[:4] + ("must be positive",)


def negative_pixel_spacing(tmp: Path) -> Case:
    return _bad_header(tmp, pixel_spacing=(0.5, -0.8))[:4] + ("must be positive",)


def nan_pixel_spacing(tmp: Path) -> Case:
    return _bad_header(tmp, pixel_spacing=(float("nan"), 0.8))[:4] + ("NaN",)


def nan_position(tmp: Path) -> Case:
    return _bad_header(tmp, ipp=(float("nan"), 20.0, 30.0))[:4] + ("ImagePositionPatient",)


def missing_position(tmp: Path) -> Case:
    import pydicom

    paths, _ = write_series(tmp / "s", n=3)
    ds = pydicom.dcmread(paths[0])
    del ds.ImagePositionPatient
    ds.save_as(paths[0])
    return tmp / "s", {}, DicomError, paths[0], "ImagePositionPatient is missing"


def only_non_dicom(tmp: Path) -> Case:
    folder = tmp / "docs"
    folder.mkdir()
    (folder / "report.txt").write_text("radiology report\n")
    (folder / "scan.jpg").write_bytes(b"\xff\xd8\xff\xe0junk")
    return folder, {}, DicomError, folder, "no DICOM image"


def empty_folder(tmp: Path) -> Case:
    folder = tmp / "empty"
    folder.mkdir()
    return folder, {}, DicomError, folder, "holds no files"


def non_dicom_file(tmp: Path) -> Case:
    f = tmp / "scan.img"
    f.write_bytes(b"\0" * 400)
    return f, {}, InputError, f, "unknown image format"


def missing_path(tmp: Path) -> Case:
    return tmp / "nope", {}, InputError, tmp / "nope", "no such file"


def tie_between_series(tmp: Path) -> Case:
    write_series(tmp / "study" / "a", n=3, series_uid="1.2.3.1", series_number=3, description="t1_tse_sag")
    write_series(
        tmp / "study" / "b", n=3, series_uid="1.2.3.2", series_number=4, description="t1_tse_sag_rpt"
    )
    return tmp / "study", {}, DicomError, tmp / "study", "--series"


def two_axials_tie(tmp: Path) -> Case:
    write_series(
        tmp / "st" / "a",
        n=3,
        iop=AX,
        step=(0, 0, 3.0),
        series_uid="1.2.3.1",
        series_number=3,
        description="t2_tra",
    )
    write_series(
        tmp / "st" / "b",
        n=3,
        iop=AX,
        step=(0, 0, 3.0),
        series_uid="1.2.3.2",
        series_number=4,
        description="t1_tra",
    )
    return tmp / "st", {}, DicomError, tmp / "st", "equally good"


def series_not_found(tmp: Path) -> Case:
    write_series(tmp / "s", n=3)
    return tmp / "s", {"series": "flair"}, DicomError, tmp / "s", "no series matches"


def four_d_series(tmp: Path) -> Case:
    folder = tmp / "dyn"
    folder.mkdir()
    for t in range(2):
        for k in range(3):
            write_image(
                folder / f"t{t}_{k}.dcm",
                np.full((4, 4), t, np.uint16),
                ipp=(-3.0 * k, 0, 0),
                instance=t * 3 + k + 1,
                extra={"TemporalPositionIdentifier": t + 1},
            )
    return folder, {}, DicomError, folder, "TemporalPositionIdentifier"


def color_image(tmp: Path) -> Case:
    import pydicom

    paths, _ = write_series(tmp / "s", n=3)
    ds = pydicom.dcmread(paths[0])
    ds.SamplesPerPixel = 3
    ds.PhotometricInterpretation = "RGB"
    ds.PlanarConfiguration = 0
    ds.save_as(paths[0])
    return tmp / "s", {}, DicomError, paths[0], "samples per pixel"


def mosaic_time_series(tmp: Path) -> Case:
    from conftest import shared_path

    src = shared_path("dcm_qa_ts_transfer_syntaxes", "In", "1.dcm")
    import pydicom

    folder = tmp / "epi"
    folder.mkdir()
    for k in range(2):  # two volumes of one mosaic series
        ds = pydicom.dcmread(src)
        ds.SeriesNumber = 10
        ds.InstanceNumber = k + 1
        ds.SOPInstanceUID = f"{ds.SOPInstanceUID}.{k}"
        ds.save_as(folder / f"{k}.dcm")
    return folder, {}, DicomError, folder, "MOSAIC"


CASES: dict[str, Callable[[Path], Case]] = {
    f.__name__: f
    for f in (
        truncated_pixels,
        truncated_header,
        truncated_real_file,
        no_pixel_data,
        missing_slice,
        non_uniform_spacing,
        duplicate_positions,
        mixed_orientations,
        zero_pixel_spacing,
        negative_pixel_spacing,
        nan_pixel_spacing,
        nan_position,
        missing_position,
        only_non_dicom,
        empty_folder,
        non_dicom_file,
        missing_path,
        tie_between_series,
        two_axials_tie,
        series_not_found,
        four_d_series,
        color_image,
        mosaic_time_series,
    )
}


#: cases built from files in ../shared/data (skipped with a reason when it is absent)
SHARED = {"truncated_real_file", "mosaic_time_series"}


@pytest.mark.parametrize(
    "name", [pytest.param(n, marks=pytest.mark.shared_data) if n in SHARED else n for n in sorted(CASES)]
)
def test_bad_input_is_refused_with_a_clear_message(tmp_path, name):
    path, kwargs, error, named, fragment = CASES[name](tmp_path)
    with pytest.raises(error) as info:
        load_volume(path, **kwargs)
    msg = str(info.value)
    assert str(named) in msg, msg
    assert fragment in msg, msg
    assert isinstance(info.value, (DicomError, InputError, GeometryError))
