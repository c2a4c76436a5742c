"""Surveillance: every vertebra and every lesion followed across a patient's time points.

Pure numeric core (DataFrames and arrays in and out, no file I/O); the pipeline writes the tables
(DESIGN §6: ``changes.csv``, ``lesion_changes.csv``, ``patient_changes.csv``). Definitions,
thresholds and their sources: docs/metrics.md ("Change between time points") and
docs/surveillance.md. What is where:

- :mod:`~spinemri.surveillance.params` — :class:`SurveillanceParams`, every default once.
- :mod:`~spinemri.surveillance.frames` — each vertebra's frame (centroid, principal axes,
  extents, height: ``vertebra_frames``) and each lesion's position in it (``lesion_positions``,
  ``lesion_positions_from_maps``): the columns the pipeline adds to vertebrae.csv / lesions.csv.
- :mod:`~spinemri.surveillance.timepoints` — time point order, consecutive pairs, VAS per time
  point, radiotherapy courses.
- :mod:`~spinemri.surveillance.consistency` — the level check between two time points
  (``check_level_consistency``: level shifts, partial spines), ``shift_levels``.
- :mod:`~spinemri.surveillance.rules` — the rule of a volume change (relative and absolute).
- :mod:`~spinemri.surveillance.lesions` — lesion matching (Hungarian + merges / splits):
  ``compare_lesions``, ``match_lesions``.
- :mod:`~spinemri.surveillance.vertebrae` — per-level statuses: ``compare_vertebrae``.
- :mod:`~spinemri.surveillance.patients` — per-patient rows: ``compare_patient``.
- :mod:`~spinemri.surveillance.compare` — all of it for a cohort: ``compare_timepoints`` ->
  ``SurveillanceResult``.
- :mod:`~spinemri.surveillance.stats` — change in burden vs change in pain (Spearman with a
  patient bootstrap, MixedLM with a random intercept per patient).

Importing this package imports none of them; import the module that defines a name.
"""
