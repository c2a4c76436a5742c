"""Other tools' mask outputs, read as they are written (docs/supported-inputs.md, "Mask formats").

* **SPINEPS** (TPTBox): an instance mask ``*_seg-vert_*_msk.nii.gz`` (vertebrae 1-28 in VerSe
  numbering, discs 100 + id, endplates 200 + id) and a subregion mask
  ``*_seg-subreg_*_msk.nii.gz`` next to it (TPTBox ``Location`` codes: 41-48 posterior
  elements, 49/50 corpus, 60 cord, 61 canal, 62 endplate, 100 disc). Read by
  :func:`read_spineps`: the vertebra mask used for measurement is the **body** (instance voxels
  whose subregion is 49/50) by default; the whole vertebrae and the other structures are kept.
* **TotalSegmentator** per-structure folders (``segmentations/vertebrae_L2.nii.gz``, ...,
  ``sacrum.nii.gz``, plus other organs' files that are ignored): merged by name into one label
  mask by :func:`read_totalseg_folder`.
* **TotalSpineSeg** maps (1 cord, 2 canal, 11-50 vertebrae, 63-100 discs): one file, recognised
  by :func:`describe_label_map`; the cord, canal and discs stay in the map (the measurement
  reports them once as non-vertebral) and are split out as structures here.
* Any other label file (VerSe-style and the rest): read as it is; its ``mask_kind`` is decided
  from the shape of the vertebrae when the labels are VerSe-style
  (:func:`spinemri.arrays.mask_kind.guess_mask_kind`).

:func:`read_spine_masks` picks the reader from the path; :func:`spinemri.io.load.load_mask`
calls :func:`read_mask` (the vertebra mask only). Every mask read here carries in ``meta``:
``mask_kind`` (``body`` / ``whole_vertebra`` / ``unknown``), ``mask_kind_reason``,
``mask_format`` and ``mask_files``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

import numpy as np

from ..arrays.labels import check_label_values
from ..arrays.mask_kind import check_mask_kind, guess_mask_kind
from ..errors import GeometryError, InputError
from ..levels import BUILTIN_SCHEMES, level_from_name, level_index
from ..volume import Volume, grid_deltas, same_grid
from .nifti import is_itk, is_nifti

__all__ = [
    "SpineMasks",
    "SPINEPS_BODY_SUBREGIONS",
    "SPINEPS_SUBREGIONS",
    "is_spineps_vert",
    "is_spineps_subreg",
    "spineps_partner",
    "is_totalseg_folder",
    "read_spineps",
    "read_totalseg_folder",
    "describe_label_map",
    "read_spine_masks",
    "read_mask",
]

#: SPINEPS / TPTBox semantic subregions (TPTBox ``TPTBox/core/vert_constants.py`` ``Location``,
#: commit f43f7fb51a158e9316f50988c2b0b04e01bc35b1).
SPINEPS_SUBREGIONS: Mapping[int, str] = MappingProxyType(
    {
        41: "arcus_vertebrae",
        42: "spinosus_process",
        43: "costal_process_left",
        44: "costal_process_right",
        45: "superior_articular_left",
        46: "superior_articular_right",
        47: "inferior_articular_left",
        48: "inferior_articular_right",
        49: "vertebra_corpus_border",
        50: "vertebra_corpus",
        60: "spinal_cord",
        61: "spinal_canal",
        62: "endplate",
        100: "disc",
    }
)
#: Subregions that make the vertebral body ("corpus"; 49 is commented "actual corpus body").
SPINEPS_BODY_SUBREGIONS = (49, 50)
_SPINEPS_POSTERIOR = tuple(range(41, 49))
_SPINEPS_CORD, _SPINEPS_CANAL = 60, 61
#: SPINEPS instance offsets (TPTBox vert_constants): disc = 100 + id, endplate = 200 + id.
_DISC_OFFSET, _ENDPLATE_OFFSET = 100, 200

_NII = r"\.nii(\.gz)?$"
_SPINEPS_VERT_RE = re.compile(r"(^|_)seg-vert(_[^/]*)?_msk" + _NII, re.IGNORECASE)
_SPINEPS_SUBREG_RE = re.compile(r"(^|_)seg-(subreg|spine)(_[^/]*)?_msk" + _NII, re.IGNORECASE)

_VERSE = BUILTIN_SCHEMES["verse"]
_TSS = BUILTIN_SCHEMES["totalspineseg"]
#: VerSe label of each level (the numbering a TotalSegmentator folder is merged into).
_VERSE_ID = {lev: lab for lab, lev in sorted(_VERSE.levels.items(), reverse=True)}


@dataclass(frozen=True)
class SpineMasks:
    """A vertebral mask with what else the tool wrote (nothing is thrown away).

    Parameters
    ----------
    vertebrae : Volume
        The vertebra label mask the measurement uses (``meta``: ``mask_kind``,
        ``mask_kind_reason``, ``mask_format``, ``mask_files``, and ``label_names`` when known).
    mask_kind : str
        ``vertebrae``'s kind: ``body``, ``whole_vertebra`` or ``unknown``.
    format : str
        ``spineps``, ``totalsegmentator_folder``, ``totalspineseg`` or ``label_map``.
    whole : Volume or None
        Whole vertebrae (body and posterior elements), same labels, when known.
    body : Volume or None
        Vertebral bodies only, same labels, when known.
    structures : mapping of str to Volume
        Other structures on the same grid: SPINEPS ``posterior_elements`` (subregion codes
        41-48 where the instance is a vertebra), ``spinal_canal``, ``spinal_cord`` (0/1),
        ``discs`` and ``endplates`` (instance ids); TotalSpineSeg ``spinal_cord``,
        ``spinal_canal`` (0/1) and ``discs`` (its disc labels); TotalSegmentator's
        ``spinal_cord`` file when present.
    files : tuple of str
        The files read.
    """

    vertebrae: Volume
    mask_kind: str
    format: str
    whole: Volume | None = None
    body: Volume | None = None
    structures: Mapping[str, Volume] = field(default_factory=dict)
    files: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "mask_kind", check_mask_kind(self.mask_kind, ",".join(self.files)))
        object.__setattr__(self, "structures", MappingProxyType(dict(self.structures)))


def is_spineps_vert(path: str | os.PathLike[str]) -> bool:
    """True for a SPINEPS instance mask name (``*_seg-vert_*_msk.nii[.gz]``).

    Parameters
    ----------
    path : path-like
        Only the file name is matched (case-insensitively).

    Returns
    -------
    bool
        Whether the name is a SPINEPS ``seg-vert`` mask.
    """
    return bool(_SPINEPS_VERT_RE.search(Path(path).name))


def is_spineps_subreg(path: str | os.PathLike[str]) -> bool:
    """True for a SPINEPS subregion mask name (``*_seg-subreg_*_msk`` or the older ``seg-spine``).

    Parameters
    ----------
    path : path-like
        Only the file name is matched (case-insensitively).

    Returns
    -------
    bool
        Whether the name is a SPINEPS subregion mask.
    """
    return bool(_SPINEPS_SUBREG_RE.search(Path(path).name))


def spineps_partner(vert: str | os.PathLike[str]) -> Path | None:
    """The subregion mask written next to a SPINEPS instance mask, when it exists.

    Parameters
    ----------
    vert : path-like
        A ``*_seg-vert_*_msk.nii.gz`` file.

    Returns
    -------
    Path or None
        ``seg-vert`` replaced by ``seg-subreg`` (or the older ``seg-spine``) in the same
        folder, the first that is a file; None when neither is.
    """
    p = Path(vert)
    for other in ("seg-subreg", "seg-spine"):
        cand = p.with_name(re.sub("seg-vert", other, p.name, count=1, flags=re.IGNORECASE))
        if cand != p and cand.is_file():
            return cand
    return None


def _totalseg_vertebra_files(folder: Path) -> list[tuple[str, Path]]:
    out: list[tuple[str, Path]] = []
    for f in sorted(folder.iterdir()):
        if not f.is_file() or f.name.startswith(".") or not is_nifti(f):
            continue
        stem = re.sub(_NII, "", f.name, flags=re.IGNORECASE)
        if stem.lower().startswith("vertebrae_") or stem.lower() == "sacrum":
            lev = level_from_name(stem)
            if lev is not None:
                out.append((lev, f))
    return out


def is_totalseg_folder(path: str | os.PathLike[str]) -> bool:
    """True for a folder of TotalSegmentator per-structure files (``vertebrae_L2.nii.gz``, ...).

    Parameters
    ----------
    path : path-like
        A folder.

    Returns
    -------
    bool
        Whether the folder holds at least one ``vertebrae_<level>.nii[.gz]`` or
        ``sacrum.nii[.gz]`` file.
    """
    p = Path(path)
    return p.is_dir() and bool(_totalseg_vertebra_files(p))


def _load(path: Path) -> Volume:
    from .load import load_volume

    vol = load_volume(path)
    return vol.with_data(check_label_values(vol.data, str(path)))


def _same_grid_or_raise(vol: Volume, ref: Volume, path: Path, ref_path: Path) -> None:
    if same_grid(vol.shape, vol.affine, ref.shape, ref.affine):
        return
    d = grid_deltas(vol.shape, vol.affine, ref.shape, ref.affine)
    raise GeometryError(
        f"{path}: not on the grid of {ref_path.name} (shape {vol.shape} vs {ref.shape}, origin differs by "
        f"up to {d['origin_mm']:.4g} mm, spacing by up to {max(d['spacing_ijk_mm']):.4g} mm, direction "
        f"cosines by up to {d['direction']:.3g}); the files of one segmentation must share one grid: "
        "use the files of one run of the tool"
    )


def _u8(mask: np.ndarray) -> np.ndarray:
    return mask.astype(np.uint8)


def _meta(mask_kind: str, reason: str, fmt: str, files: list[Path], **extra: object) -> dict[str, object]:
    return {
        "mask_kind": mask_kind,
        "mask_kind_reason": reason,
        "mask_format": fmt,
        "mask_files": tuple(str(f) for f in files),
        **extra,
    }


def read_spineps(
    vert: str | os.PathLike[str],
    subreg: str | os.PathLike[str] | None = None,
    *,
    part: str = "body",
) -> SpineMasks:
    """Read a SPINEPS instance mask and its subregion mask.

    Parameters
    ----------
    vert : path-like
        The instance mask ``*_seg-vert_*_msk.nii.gz``: vertebrae 1-28 (VerSe numbering),
        discs 100 + id, endplates 200 + id.
    subreg : path-like, optional
        The subregion mask; default :func:`spineps_partner` of ``vert``.
    part : {"body", "whole"}, default "body"
        Which vertebra mask is ``SpineMasks.vertebrae`` (what the measurement uses): the
        vertebral bodies (instance voxels whose subregion is 49 or 50) or the whole vertebrae
        (every voxel of instance 1-28). Without a subregion mask only ``whole`` exists.

    Returns
    -------
    SpineMasks
        ``body`` and ``whole`` masks (VerSe labels), and the structures
        ``posterior_elements``, ``spinal_canal``, ``spinal_cord``, ``discs``, ``endplates``.

    Raises
    ------
    InputError
        ``part`` is not body/whole, a file is missing or unreadable, or ``part="body"`` is
        asked without a subregion mask.
    GeometryError
        The two masks are not on one grid (the message names the subregion file).
    """
    if part not in ("body", "whole"):
        raise InputError(f"part must be 'body' or 'whole', got {part!r}")
    vp = Path(vert)
    sp = Path(subreg) if subreg is not None else spineps_partner(vp)
    inst = _load(vp)
    v = np.asarray(inst.data)
    verse_ids = np.array(sorted(_VERSE.levels), dtype=np.int64)
    is_vert = np.isin(v, verse_ids)
    whole_arr = np.where(is_vert, v, 0).astype(v.dtype)
    structures: dict[str, Volume] = {}
    mk = {"source": str(vp), "kind": "vertebra_mask"}

    def vol(a: np.ndarray, **meta: object) -> Volume:
        return Volume(a, inst.affine, {**mk, **meta})

    disc = (v > _DISC_OFFSET) & (v < _ENDPLATE_OFFSET)
    structures["discs"] = vol(np.where(disc, v, 0).astype(v.dtype), structure="discs")
    endp = (v > _ENDPLATE_OFFSET) & (v < _ENDPLATE_OFFSET + _DISC_OFFSET)
    structures["endplates"] = vol(np.where(endp, v, 0).astype(v.dtype), structure="endplates")
    files = [vp]
    if sp is None:
        if part == "body":
            raise InputError(
                f"{vp}: a SPINEPS instance mask without its subregion mask (expected "
                f"{vp.name.replace('seg-vert', 'seg-subreg')} next to it): the vertebral body cannot be "
                "told from the posterior elements; put the subregion mask next to it, or read the whole "
                "vertebrae with part='whole'"
            )
        whole = vol(
            whole_arr, **_meta("whole_vertebra", "SPINEPS instance mask (whole vertebrae)", "spineps", files)
        )
        return SpineMasks(
            whole, "whole_vertebra", "spineps", whole=whole, structures=structures, files=(str(vp),)
        )
    sub = _load(sp)
    _same_grid_or_raise(sub, inst, sp, vp)
    s = np.asarray(sub.data)
    files.append(sp)
    body_arr = np.where(is_vert & np.isin(s, SPINEPS_BODY_SUBREGIONS), v, 0).astype(v.dtype)
    structures["posterior_elements"] = vol(
        np.where(is_vert & np.isin(s, _SPINEPS_POSTERIOR), s, 0).astype(s.dtype),
        structure="posterior_elements",
    )
    structures["spinal_canal"] = vol(_u8(s == _SPINEPS_CANAL), structure="spinal_canal")
    structures["spinal_cord"] = vol(_u8(s == _SPINEPS_CORD), structure="spinal_cord")
    common = {"mask_format": "spineps", "mask_files": tuple(str(f) for f in files)}
    body = vol(
        body_arr,
        **{**common, "mask_kind": "body", "mask_kind_reason": "SPINEPS subregions 49/50 (vertebral corpus)"},
    )
    whole = vol(
        whole_arr,
        **{
            **common,
            "mask_kind": "whole_vertebra",
            "mask_kind_reason": "SPINEPS instance mask (whole vertebrae)",
        },
    )
    chosen = body if part == "body" else whole
    return SpineMasks(
        chosen,
        "body" if part == "body" else "whole_vertebra",
        "spineps",
        whole=whole,
        body=body,
        structures=structures,
        files=tuple(str(f) for f in files),
    )


def read_totalseg_folder(folder: str | os.PathLike[str]) -> SpineMasks:
    """Merge a TotalSegmentator per-structure folder into one vertebra label mask.

    Parameters
    ----------
    folder : path-like
        TotalSegmentator's output folder (``segmentations/``): ``vertebrae_C1.nii.gz`` …
        ``vertebrae_L5.nii.gz``, ``vertebrae_S1.nii.gz``, ``sacrum.nii.gz`` (any subset) and
        other structures' files, which are ignored (``spinal_cord.nii.gz`` is kept as a
        structure).

    Returns
    -------
    SpineMasks
        ``vertebrae``: VerSe labels (C1-C7 = 1-7, T1-T12 = 8-19, L1-L5 = 20-24, sacrum and S1 =
        26), with ``meta["label_names"]`` giving each label's class name, so that the scheme
        comes from the names; ``mask_kind`` ``whole_vertebra``. Empty files (TotalSegmentator
        writes every class, found or not) add no label.

    Raises
    ------
    InputError
        No vertebra file in the folder, an unreadable file, a file that is not a 0/1 (or
        0/label) mask, or vertebra files that all are empty.
    GeometryError
        A file not on the grid of the first vertebra file (the message names it).
    """
    root = Path(folder)
    found = _totalseg_vertebra_files(root) if root.is_dir() else []
    if not found:
        raise InputError(
            f"{root}: no TotalSegmentator vertebra file (vertebrae_C1.nii.gz ... vertebrae_L5.nii.gz, "
            "sacrum.nii.gz) in this folder"
        )
    found.sort(key=lambda t: (level_index(t[0]), t[1].name))
    ref: Volume | None = None
    ref_path = found[0][1]
    merged: np.ndarray | None = None
    names: dict[int, str] = {}
    overlap = 0
    for lev, f in found:
        vol = _load(f)
        if ref is None:
            ref = vol
            merged = np.zeros(vol.shape, dtype=np.uint8)
        else:
            _same_grid_or_raise(vol, ref, f, ref_path)
        assert merged is not None
        hit = np.asarray(vol.data) > 0
        if not hit.any():
            continue
        lab = _VERSE_ID[lev]
        clash = hit & (merged > 0) & (merged != lab)
        overlap += int(clash.sum())
        merged[hit & (merged == 0)] = lab  # cranial file first: it keeps a voxel two files claim
        stem = re.sub(_NII, "", f.name, flags=re.IGNORECASE)
        names[lab] = names[lab] + "+" + stem if lab in names else stem
    assert ref is not None and merged is not None
    if not names:
        raise InputError(f"{root}: every TotalSegmentator vertebra file is empty; nothing to measure")
    files = [f for _, f in found]
    structures: dict[str, Volume] = {}
    for f in sorted(root.iterdir()):
        if is_nifti(f) and re.sub(_NII, "", f.name, flags=re.IGNORECASE).lower() == "spinal_cord":
            cord = _load(f)
            _same_grid_or_raise(cord, ref, f, ref_path)
            structures["spinal_cord"] = Volume(_u8(np.asarray(cord.data) > 0), ref.affine, {"source": str(f)})
    ignored = sum(1 for f in root.iterdir() if is_nifti(f)) - len(files) - len(structures)
    meta = _meta(
        "whole_vertebra",
        "TotalSegmentator vertebrae classes are whole vertebrae",
        "totalsegmentator_folder",
        files,
        source=str(root),
        kind="vertebra_mask",
        label_names={k: names[k] for k in sorted(names)},
        ignored_files=ignored,
        overlapping_voxels=overlap,
    )
    vertebrae = Volume(merged, ref.affine, meta)
    return SpineMasks(
        vertebrae,
        "whole_vertebra",
        "totalsegmentator_folder",
        whole=vertebrae,
        structures=structures,
        files=tuple(str(f) for f in files),
    )


def _present_labels(data: np.ndarray) -> list[int]:
    arr = np.asarray(data)
    if arr.dtype in (np.uint8, np.uint16) and arr.ndim == 3:
        # one compiled pass over the labels' box in memory order (np.bincount would copy a
        # Fortran-ordered mask to C order and cast it to 8-byte integers: 9x the mask's bytes)
        from ..arrays.moments import label_moments

        return [int(x) for x in label_moments(arr, np.eye(4)).labels]
    if arr.dtype in (np.uint8, np.uint16):
        counts = np.bincount(arr.ravel())
        return [int(x) for x in np.flatnonzero(counts) if x]
    return [int(x) for x in np.unique(arr) if x]


def describe_label_map(mask: Volume) -> SpineMasks:
    """What a single label file is: a TotalSpineSeg map, a VerSe-style mask, or unknown.

    Parameters
    ----------
    mask : Volume
        Integer labels as read from one file (``meta["source"]`` names it).

    Returns
    -------
    SpineMasks
        ``vertebrae`` is ``mask`` itself (every label kept: the measurement's scheme decides
        which are vertebrae) with ``mask_kind``, ``mask_kind_reason`` and ``mask_format`` in
        its meta (values already in ``mask.meta`` win). ``format`` ``totalspineseg`` when every
        label is a TotalSpineSeg label and one is above 28 (no VerSe label is): its vertebrae
        are whole vertebrae, its cord, canal and discs are split out as ``structures``.
        ``label_map`` otherwise: when every label is a VerSe label (1-28) the kind comes
        from the vertebrae's shape (:func:`~spinemri.arrays.mask_kind.guess_mask_kind`),
        else it is ``unknown``.
    """
    source = str(mask.meta.get("source", "mask"))
    data = np.asarray(mask.data)
    present = _present_labels(data)
    known_tss = set(_TSS.levels) | set(_TSS.other)
    structures: dict[str, Volume] = {}
    if present and set(present) <= known_tss and max(present) > max(_VERSE.levels):
        fmt = "totalspineseg"
        kind, reason = "whole_vertebra", "TotalSpineSeg vertebrae are whole vertebrae"
        for name in ("spinal_cord", "spinal_canal"):
            codes = [k for k, v in _TSS.other.items() if v == name]
            structures[name] = Volume(
                _u8(np.isin(data, codes)), mask.affine, {"source": source, "structure": name}
            )
        discs = [k for k, v in _TSS.other.items() if v == "disc"]
        structures["discs"] = Volume(
            np.where(np.isin(data, discs), data, 0).astype(data.dtype), mask.affine, {"source": source}
        )
    else:
        fmt = "label_map"
        if present and set(present) <= set(_VERSE.levels):
            kind, reason = guess_mask_kind(data, mask.spacing, present)
            reason = "VerSe-style labels, kind from shape: " + reason
        else:
            kind, reason = "unknown", "labels are not VerSe-style (1-28); kind not decided from the shape"
    if mask.meta.get("mask_kind") is not None:
        kind = check_mask_kind(mask.meta["mask_kind"], source)
        reason = str(mask.meta.get("mask_kind_reason", "given in the mask's metadata"))
    meta: dict[str, object] = {"mask_kind": kind, "mask_kind_reason": reason, "mask_format": fmt}
    meta["mask_files"] = (source,)
    for key in ("mask_format", "mask_files"):  # already recorded by a reader: kept
        if key in mask.meta:
            meta[key] = mask.meta[key]
    vertebrae = mask.with_meta(**meta)
    return SpineMasks(
        vertebrae,
        kind,
        str(vertebrae.meta["mask_format"]),
        whole=vertebrae if kind == "whole_vertebra" else None,
        body=vertebrae if kind == "body" else None,
        structures=structures,
        files=tuple(str(f) for f in vertebrae.meta["mask_files"]),
    )


def read_spine_masks(path: str | os.PathLike[str], *, part: str = "body") -> SpineMasks:
    """Read any supported mask layout, with what else the tool wrote.

    Parameters
    ----------
    path : path-like
        A SPINEPS ``*_seg-vert_*_msk.nii.gz`` (its subregion mask is found next to it), a
        TotalSegmentator per-structure folder, or any label file or DICOM folder
        :func:`spinemri.load_volume` reads (TotalSpineSeg maps recognised by their labels).
    part : {"body", "whole"}, default "body"
        For SPINEPS: which vertebra mask is measured (see :func:`read_spineps`); a SPINEPS
        instance mask without subregions falls back to the whole vertebrae.

    Returns
    -------
    SpineMasks
        The vertebra mask (with ``mask_kind`` in its meta) and the other structures.

    Raises
    ------
    InputError
        A SPINEPS subregion mask given instead of the instance mask, or any reader's error.
    GeometryError
        Files of one segmentation on different grids.
    """
    p = Path(path)
    if p.is_file() and is_spineps_subreg(p):
        raise InputError(
            f"{p}: is a SPINEPS subregion mask; pass the instance mask (seg-vert) next to it: spinemri "
            "reads the subregions from there"
        )
    if p.is_file() and is_spineps_vert(p):
        return read_spineps(p, part=part if spineps_partner(p) is not None else "whole")
    if p.is_dir() and not (is_nifti(p) or is_itk(p)) and is_totalseg_folder(p):
        return read_totalseg_folder(p)
    if p.is_dir() and (p / "segmentations").is_dir() and is_totalseg_folder(p / "segmentations"):
        return read_totalseg_folder(p / "segmentations")
    return describe_label_map(_load(p))


def read_mask(path: str | os.PathLike[str]) -> Volume:
    """The vertebra mask of any supported layout (what :func:`spinemri.load_mask` measures).

    Parameters
    ----------
    path : path-like
        See :func:`read_spine_masks`.

    Returns
    -------
    Volume
        ``read_spine_masks(path).vertebrae``: SPINEPS bodies, a merged TotalSegmentator
        folder, or the label file as it is; ``meta["mask_kind"]`` set.
    """
    return read_spine_masks(path).vertebrae
