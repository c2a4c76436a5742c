"""Seeded digital spine phantom with an independently computed ground truth.

:func:`make_phantom` draws a sagittal spine MR volume (vertebral bodies with a
cortical rim, discs, canal with CSF and cord, posterior elements, soft tissue),
plants metastasis-like lesions, and returns the image, the vertebral label
mask and a :class:`PhantomTruth` computed from the analytic shapes, never from
spinemri's segmentation or metrics code. Everything is in memory; the writers
live in :mod:`spinemri.io.dicom.write` and :mod:`spinemri.io.cohort_write`.
The model, intensities and definitions are documented in docs/phantom.md.

What is where:

* :mod:`.params` — :class:`PhantomParams` (every option, its default and range),
  :class:`LesionSpec` (one explicitly placed lesion), the ``CONTRASTS`` presets.
* :mod:`.anatomy` — body sizes, the spinal curve, :func:`~.anatomy.build_spine`.
* :mod:`.lesions` — the lesion plan (involved levels, kinds, sizes, places).
* :mod:`.render` — supersampled shape membership on a voxel box (:class:`~.render.Lesion`).
* :mod:`.scene` — the image grid and the render of bodies, discs, lesions, background, bias.
* :mod:`.truth` — :class:`PhantomTruth` and the truth tables.
* :mod:`.make` — :func:`make_phantom`: the assembly (noise, mask labels, truth).
* :mod:`.followup` — :func:`~.followup.make_followup`: one patient at several dates, lesions
  changing by known amounts, the patient repositioned, the change truth from the analytic plan.

The names below are re-exported here for convenience.
"""

from __future__ import annotations

from .followup import Followup, make_followup
from .make import make_phantom
from .params import CONTRASTS, LesionSpec, PhantomParams
from .truth import PhantomTruth, truth_tables

__all__ = [
    "PhantomParams",
    "LesionSpec",
    "PhantomTruth",
    "CONTRASTS",
    "make_phantom",
    "truth_tables",
    "make_followup",
    "Followup",
]
