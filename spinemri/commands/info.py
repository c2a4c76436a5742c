"""``spinemri info PATH``: what spinemri sees in a DICOM folder/file or a volume file.

* DICOM folder or file: one line per series (shortened SeriesInstanceUID,
  number, plane, images, modality, localizer flag; the SeriesDescription only with
  ``--show-descriptions``, since sites put patient names in it) and the series
  :func:`spinemri.load_volume` would pick, or why it would refuse (that message
  scrubbed of the folder's identifying header values, :mod:`spinemri.io.scrub`). The
  ``loadable`` column and the ``not loadable`` lines are the loader's own checks
  (:func:`spinemri.io.dicom.series.check_series`): a 4-D series, a copied series, missing or
  unevenly spaced slices are not "picked" when the loader would refuse them; the picked
  series is loaded to be sure, and when it cannot be, the loadable ones are named.
* NIfTI / NRRD / MetaImage file: shape, dtype, spacing, axis codes, affine and
  value range; when the values look like labels (integers, at most
  ``MAX_LABELS`` distinct values) also the label values with voxel counts and
  the label scheme ``auto`` (or ``--scheme``) would choose, or why it cannot.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from ._options import add_scheme_option

__all__ = ["add_parser", "run", "MAX_LABELS"]

#: At most this many distinct integer values (background included) make a file "look like labels".
MAX_LABELS = 128


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register the ``info`` sub-command.

    Parameters
    ----------
    sub : argparse._SubParsersAction
        The sub-command action of the ``spinemri`` parser (from
        :meth:`argparse.ArgumentParser.add_subparsers`); gets the ``info``
        parser with positional ``path``, ``--series``, ``--show-descriptions`` and ``--scheme``,
        whose ``func`` is :func:`run`.
    """
    p = sub.add_parser(
        "info",
        help="describe a DICOM folder/file (series, which one would be loaded) or a volume/mask file",
        description=(
            "For a DICOM folder or file: list the series found (recursively), whether the loader can load "
            "each (and why not), and which one load_volume would pick. For a NIfTI/NRRD/MHA file: shape, "
            "dtype, spacing, orientation, affine, value range, and for a label mask its labels and the label "
            "scheme 'auto' would choose."
        ),
    )
    p.add_argument("path", help="DICOM folder, DICOM file, or .nii/.nii.gz/.nrrd/.nhdr/.mha/.mhd file")
    p.add_argument(
        "--series", help="show which series this selection picks (UID, number or description regex)"
    )
    p.add_argument(
        "--show-descriptions",
        action="store_true",
        help="also print each series' SeriesDescription (off by default: descriptions can hold patient "
        "names; docs/robustness.md)",
    )
    add_scheme_option(p, "for a label mask, the label scheme to check it against")
    p.set_defaults(func=run)


def _is_dicom_input(path: Path) -> bool:
    from ..io.nifti import is_itk, is_nifti

    if path.is_dir():
        return True
    if is_nifti(path) or is_itk(path):
        return False
    from ..io.dicom.header import is_dicom_file

    return is_dicom_file(path)


def _print_dicom(path: Path, series: str | None, show_descriptions: bool = False) -> int:
    from ..errors import DicomError
    from ..io.dicom.series import check_series, load_dicom, pick_series, short_uid
    from ..io.scrub import dicom_identifiers, scrub_text

    checks = check_series(path)  # the loader's own refusals, from the headers
    infos = [c.info for c in checks]
    problems = {id(c.info): c.problem for c in checks}

    def scrub(text: str) -> str:
        return scrub_text(text, dicom_identifiers([path]))

    chosen, pick_error = None, ""
    try:
        chosen = pick_series(infos, series, where=path)
    except DicomError as exc:
        pick_error = str(exc)
    if chosen is not None and problems[id(chosen)] is None:
        try:  # what only the pixels show (truncated, compressed, non-finite): load it as measure would
            load_dicom(path, series)
        except DicomError as exc:
            problems[id(chosen)] = str(exc).removeprefix(f"{path}: ")

    print(f"{path}: {len(infos)} DICOM series")
    desc_col = f"{'description':<32} " if show_descriptions else ""
    header = (
        f"  {'uid':<21} {'number':>6}  {desc_col}{'plane':<9} {'images':>6} {'modality':<8} "
        f"{'loadable':<8} localizer"
    )
    print(header)
    for s in infos:
        number = "" if s.series_number is None else str(s.series_number)
        desc = s.description if len(s.description) <= 32 else s.description[:29] + "..."
        desc_cell = f"{desc:<32} " if show_descriptions else ""
        loadable = "no" if problems[id(s)] else "yes"
        print(
            f"  {short_uid(s.series_uid):<21} {number:>6}  {desc_cell}{s.plane:<9} {s.n_images:>6} "
            f"{s.modality:<8} {loadable:<8} {'yes' if s.is_localizer else 'no'}"
        )
    for s in infos:
        problem = problems[id(s)]
        if problem:
            print(f"  not loadable: series {s.label()}: {scrub(problem.splitlines()[0])}")
    if chosen is None:
        print(f"load_volume would not pick a series: {scrub(pick_error)}")
        return 0
    how = f"with --series {series}" if series is not None else "by default"
    desc_text = f" {chosen.description!r}" if show_descriptions else ""
    problem = problems[id(chosen)]
    if problem is None:
        print(f"load_volume picks {how}: series {chosen.series_number}{desc_text} (uid {chosen.series_uid})")
        return 0
    others = [s for s in infos if s is not chosen and not problems[id(s)]]
    hint = (
        "pass --series with one of the loadable series: "
        + ", ".join(f"{s.series_number}" if s.series_number is not None else s.series_uid for s in others)
        if others
        else "no series of this folder can be loaded"
    )
    print(
        f"load_volume would pick {how} series {chosen.series_number}{desc_text} (uid {chosen.series_uid}) "
        f"but cannot load it: {scrub(problem.splitlines()[0])}; {hint}"
    )
    return 0


def _label_summary(data: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """(values, counts) when the data look like integer labels, else None."""
    arr = np.asarray(data)
    if arr.dtype == np.bool_:
        arr = arr.astype(np.uint8)
    if np.issubdtype(arr.dtype, np.floating):
        if not np.all(np.isfinite(arr)) or np.any(arr != np.rint(arr)):
            return None
        arr = arr.astype(np.int64)
    elif not np.issubdtype(arr.dtype, np.integer):
        return None
    lo, hi = int(arr.min()), int(arr.max())
    if lo < 0:
        return None
    if hi - lo < 1 << 16:
        counts = np.bincount((arr - lo).ravel())
        values = np.flatnonzero(counts) + lo
        counts = counts[counts > 0]
    else:
        values, counts = np.unique(arr, return_counts=True)
    if len(values) > MAX_LABELS:
        return None
    return values, counts


def _print_volume(path: Path, scheme_choice: str = "auto") -> int:
    from ..anatomy_check import label_shapes
    from ..errors import SpinemriError
    from ..io.load import load_volume
    from ..scheme_choice import resolve_scheme

    vol = load_volume(path)
    data = np.asarray(vol.data)
    print(f"{path}")
    print(f"  format   {vol.meta.get('format', '?')}")
    print(f"  shape    {vol.shape}")
    print(f"  dtype    {data.dtype}")
    print(f"  spacing  {' x '.join(f'{s:.4g}' for s in vol.spacing)} mm")
    print(f"  axcodes  {''.join(vol.axcodes)}")
    with np.printoptions(precision=4, suppress=True):
        rows = str(vol.affine).splitlines()
    print("  affine   " + ("\n           ".join(rows)))
    if data.size:
        print(f"  range    {np.nanmin(data):.6g} .. {np.nanmax(data):.6g}")
    labels = _label_summary(data)
    if labels is None:
        return 0
    values, counts = labels
    print(f"  labels   {len(values)} distinct values (value: voxels)")
    print("           " + ", ".join(f"{int(v)}: {int(c)}" for v, c in zip(values, counts, strict=False)))
    names = vol.meta.get("label_names")
    try:
        shapes = label_shapes(data.astype(np.int64, copy=False), vol.affine)
        scheme, reason = resolve_scheme(
            scheme_choice, [int(v) for v in values], names=dict(names) if names else None, shapes=shapes
        )
    except SpinemriError as exc:
        print(f"  scheme   cannot guess: {exc}")
        return 0
    print(f"  scheme   {scheme.name} ({reason})")
    return 0


def run(args: argparse.Namespace) -> int:
    """Describe ``args.path`` on stdout: its DICOM series, or the volume or label mask.

    Parameters
    ----------
    args : argparse.Namespace
        Parsed arguments of the ``info`` sub-command: ``path`` (DICOM folder or
        file, or a NIfTI/NRRD/MetaImage file), ``series`` (a series selection
        to try, or None) and ``show_descriptions`` (print SeriesDescription).

    Returns
    -------
    int
        Exit status 0, also when no series would be picked or no label scheme
        can be guessed (that is printed). A missing path or an unreadable file is
        raised as :class:`~spinemri.errors.SpinemriError`
        (:func:`spinemri.cli.main` maps it to 2 or 1).
    """
    from ..errors import InputError

    if args.series is not None:  # --series 'a{99999999999}': bad usage (exit 2), as for run
        from ..cli import check_options
        from ..params import check_series_choice

        check_options(lambda: check_series_choice(args.series), args)
    path = Path(args.path)
    if not path.exists():
        raise InputError(f"{path}: no such file or folder")
    if _is_dicom_input(path):
        return _print_dicom(path, args.series, bool(getattr(args, "show_descriptions", False)))
    return _print_volume(path, getattr(args, "scheme", "auto"))
