"""Write a :class:`~spinemri.volume.Volume` as a classic single-frame DICOM MR series.

Layout (the inverse of the reader's, see docs/phantom.md): ``data[i, j, k]``
with i = DICOM column index, j = DICOM row index, k = slice index. Each slice
``k`` becomes one MR Image Storage file whose

* ImageOrientationPatient is (row direction, column direction) in LPS, the
  directions of increasing i and j (affine columns 0 and 1, RAS -> LPS);
* PixelSpacing is ``[row spacing, column spacing]`` = ``[|affine[:, 1]|, |affine[:, 0]|]``
  (the distance between rows first, as DICOM PS3.3 C.7.6.2.1.1 says);
* ImagePositionPatient is the LPS position of voxel (0, 0, k);
* SliceThickness and SpacingBetweenSlices are ``|affine[:, 2]|``.

Pixels are stored as uint16. Integer-valued data in [0, 65535] are stored as
they are (RescaleSlope 1, RescaleIntercept 0: exact round trip); other data
are mapped linearly onto 0..65535 with the slope and intercept recorded (a
lossy quantisation, logged). UIDs come from :func:`pydicom.uid.generate_uid`
with an entropy source built from ``uid_seed``, and no clock or random state
enters the files, so the same inputs give byte-identical files.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ...errors import GeometryError, InputError
from ...volume import Volume
from ..atomic import atomic_path
from ..convert import ijk_to_kji, ras_to_lps

__all__ = ["write_dicom_series", "series_uids"]

logger = logging.getLogger(__name__)

#: Acquisition parameters written per contrast (plausible 1.5 T values; ms).
_SEQUENCE: dict[str, dict[str, Any]] = {
    "stir": {
        "ScanningSequence": ["SE", "IR"],
        "SequenceVariant": ["SK", "SP"],
        "ScanOptions": "IR",
        "RepetitionTime": 3500.0,
        "EchoTime": 60.0,
        "InversionTime": 150.0,
        "EchoTrainLength": 15,
    },
    "t1": {
        "ScanningSequence": "SE",
        "SequenceVariant": ["SK", "SP"],
        "ScanOptions": "",
        "RepetitionTime": 550.0,
        "EchoTime": 10.0,
        "EchoTrainLength": 3,
    },
}


def series_uids(uid_seed: str, series_number: int) -> dict[str, str]:
    """Deterministic Study, Series and Frame of Reference UIDs for a seed string.

    Parameters
    ----------
    uid_seed : str
        Entropy source (the same seed gives the same UIDs).
    series_number : int
        SeriesNumber (enters the series UID only).

    Returns
    -------
    dict of str to str
        ``"study"``, ``"frame"`` (Frame of Reference) and ``"series"`` UIDs.
    """
    from pydicom.uid import generate_uid

    return {
        "study": str(generate_uid(entropy_srcs=[uid_seed, "study"])),
        "frame": str(generate_uid(entropy_srcs=[uid_seed, "frame-of-reference"])),
        "series": str(generate_uid(entropy_srcs=[uid_seed, "series", str(series_number)])),
    }


def _quantise(data: np.ndarray) -> tuple[np.ndarray, float, float]:
    arr = np.asarray(data)
    if np.issubdtype(arr.dtype, np.integer) or arr.dtype == np.bool_:
        lo, hi = int(arr.min()), int(arr.max())
        if lo >= 0 and hi <= 65535:
            return arr.astype(np.uint16), 1.0, 0.0
    else:
        if not np.all(np.isfinite(arr)):
            raise InputError(
                "write_dicom_series: the volume holds NaN or infinite values; DICOM cannot store them"
            )
        if np.all(np.rint(arr) == arr) and arr.min() >= 0 and arr.max() <= 65535:
            return np.rint(arr).astype(np.uint16), 1.0, 0.0
    lo_f, hi_f = float(arr.min()), float(arr.max())
    slope = (hi_f - lo_f) / 65535.0 if hi_f > lo_f else 1.0
    stored = np.clip(np.rint((arr.astype(np.float64) - lo_f) / slope), 0, 65535).astype(np.uint16)
    logger.info(
        "write_dicom_series: values in [%g, %g] stored with RescaleSlope %g (lossy)", lo_f, hi_f, slope
    )
    return stored, slope, lo_f


def _ds(value: float) -> str:
    """A DICOM decimal string (<= 16 characters) that round-trips to within 1e-6 relative."""
    for digits in range(12, 5, -1):
        text = f"{value:.{digits}g}"
        if len(text) <= 16:
            return text
    return f"{value:.6g}"


def write_dicom_series(
    volume: Volume,
    folder: str | os.PathLike[str],
    *,
    patient_id: str,
    uid_seed: str,
    series_description: str = "SAG STIR",
    series_number: int = 1,
    contrast: str = "stir",
    study_date: str = "20250101",
    extra: Mapping[str, Any] | None = None,
) -> list[Path]:
    """Write ``volume`` as one DICOM file per slice into ``folder``.

    Parameters
    ----------
    volume : Volume of shape (I, J, K)
        i = column, j = row, k = slice; the affine must be orthogonal (no shear).
    folder : path-like
        Created when missing; files are named ``IM{series:02d}{k+1:04d}.dcm``
        and each is written atomically.
    patient_id : str
        Pseudonymous id; also written as PatientName (no other identifier).
    uid_seed : str
        Entropy for the UIDs (e.g. "phantom:SEED:PATIENT"); the same seed gives the same UIDs.
    series_description, series_number, contrast, study_date
        Header values; ``contrast`` ("stir" or "t1") picks plausible sequence parameters.
    extra : mapping, optional
        More header keywords to set on every file (e.g. ``{"SeriesDescription": ...}``).

    Returns
    -------
    list of Path
        The files written, in slice order.

    Raises
    ------
    GeometryError
        If the affine has shear (its columns are not orthogonal).
    """
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, MRImageStorage, generate_uid

    folder = Path(folder)
    affine = np.asarray(volume.affine, dtype=np.float64)
    lps = ras_to_lps(affine)
    spacing = np.linalg.norm(lps[:3, :3], axis=0)
    dirs = lps[:3, :3] / spacing
    gram = dirs.T @ dirs
    if np.max(np.abs(gram - np.eye(3))) > 1e-6:
        raise GeometryError(
            f"write_dicom_series: the affine of {volume.meta.get('source', 'the volume')} has shear "
            f"(axis cosines {np.round(gram, 6).tolist()}); DICOM slices need orthogonal axes: resample first"
        )
    normal = np.cross(dirs[:, 0], dirs[:, 1])
    if float(normal @ dirs[:, 2]) < 0:
        logger.info("write_dicom_series: k runs against the slice normal; readers will list slices reversed")
    stored, slope, intercept = _quantise(volume.data)
    uids = series_uids(uid_seed, series_number)
    seq = _SEQUENCE.get(contrast, _SEQUENCE["stir"])
    ni, nj, nk = volume.shape
    iop = [float(v) for v in np.concatenate([dirs[:, 0], dirs[:, 1]])]
    frames = ijk_to_kji(stored)  # (slice, row, column)
    folder.mkdir(parents=True, exist_ok=True)
    finite = stored.astype(np.float64) * slope + intercept
    centre, width = float(np.percentile(finite, 50)), float(np.percentile(finite, 99.5) - finite.min()) or 1.0
    paths = []
    for k in range(nk):
        ipp = lps[:3, :3] @ np.array([0.0, 0.0, float(k)]) + lps[:3, 3]
        sop_uid = generate_uid(entropy_srcs=[uid_seed, "instance", str(series_number), str(k)])
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = MRImageStorage
        meta.MediaStorageSOPInstanceUID = sop_uid
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = Dataset()
        ds.file_meta = meta
        ds.SpecificCharacterSet = "ISO_IR 100"
        ds.ImageType = ["ORIGINAL", "PRIMARY", "M", "NONE"]
        ds.SOPClassUID = MRImageStorage
        ds.SOPInstanceUID = sop_uid
        ds.StudyDate = study_date
        ds.SeriesDate = study_date
        ds.StudyTime = "090000"
        ds.SeriesTime = f"09{series_number:02d}00"
        ds.AccessionNumber = ""
        ds.Modality = "MR"
        ds.Manufacturer = "spinemri phantom"
        ds.ReferringPhysicianName = ""
        ds.StudyDescription = "SPINE"
        ds.SeriesDescription = series_description
        ds.PatientName = patient_id
        ds.PatientID = patient_id
        ds.PatientBirthDate = ""
        ds.PatientSex = ""
        ds.BodyPartExamined = "SPINE"
        ds.MRAcquisitionType = "2D"
        for key, value in seq.items():
            setattr(ds, key, value)
        ds.SliceThickness = _ds(float(spacing[2]))
        ds.SpacingBetweenSlices = _ds(float(spacing[2]))
        ds.MagneticFieldStrength = "1.5"
        ds.PatientPosition = "HFS"
        ds.StudyInstanceUID = uids["study"]
        ds.SeriesInstanceUID = uids["series"]
        ds.StudyID = "1"
        ds.SeriesNumber = int(series_number)
        ds.InstanceNumber = k + 1
        ds.ImagePositionPatient = [_ds(float(v)) for v in ipp]
        ds.ImageOrientationPatient = [_ds(v) for v in iop]
        ds.FrameOfReferenceUID = uids["frame"]
        ds.PositionReferenceIndicator = ""
        ds.SliceLocation = _ds(float(normal @ ipp))
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.Rows = nj
        ds.Columns = ni
        ds.PixelSpacing = [_ds(float(spacing[1])), _ds(float(spacing[0]))]
        ds.BitsAllocated = 16
        ds.BitsStored = 16
        ds.HighBit = 15
        ds.PixelRepresentation = 0
        ds.WindowCenter = _ds(centre)
        ds.WindowWidth = _ds(width)
        ds.RescaleIntercept = _ds(intercept)
        ds.RescaleSlope = _ds(slope)
        for key, value in (extra or {}).items():
            setattr(ds, key, value)
        ds.PixelData = np.ascontiguousarray(frames[k]).astype("<u2").tobytes()
        path = folder / f"IM{series_number:02d}{k + 1:04d}.dcm"
        with atomic_path(path) as tmp:
            ds.save_as(tmp, enforce_file_format=True)
        paths.append(path)
    return paths
