"""DICOM input and output; one job per module (nothing is re-exported here: import from the module).

Reading a series
----------------
* :mod:`~spinemri.io.dicom.series` — find the series under a folder, summarise,
  rank and pick one, load it: ``SeriesInfo``, ``list_series``, ``pick_series``,
  ``series_rank``, ``plane_of``, ``load_dicom``.
* :mod:`~spinemri.io.dicom.header` — read one file's header: ``is_dicom_file``,
  ``read_header``, the fast plain-file reader ``read_plain_header``, and fast
  header values (``hget`` ...).
* :mod:`~spinemri.io.dicom.frames` — the one parser of per-frame geometry
  (ImagePositionPatient, ImageOrientationPatient, PixelSpacing; classic and
  enhanced multi-frame): ``Frame``, ``file_frames``, ``check_orientation``,
  ``slice_affine``. Used by the loader and by the DICOM-SEG writer.
* :mod:`~spinemri.io.dicom.pixels` — stored pixel layout, decoding,
  BitsStored masking / sign extension, rescale: ``decode_frames`` ...
* :mod:`~spinemri.io.dicom.j2k` — JPEG 2000 frames decoded on several threads.
* :mod:`~spinemri.io.dicom.mosaic` — Siemens MOSAIC images cut into slices.
* :mod:`~spinemri.io.dicom.assemble` — the frames of one series -> a 3-D
  :class:`~spinemri.volume.Volume` (slice order, affine, stack, meta):
  ``headers_to_volume``, ``patient_id_hash``.

Writing
-------
* :mod:`~spinemri.io.dicom.write` — a Volume as a classic MR series: ``write_dicom_series``.
* :mod:`~spinemri.io.dicom.seg` — a lesion (and vertebra) mask as a DICOM
  Segmentation (highdicom): ``build_dicom_seg``, ``write_dicom_seg`` ...

The LPS <-> RAS flip and the (slice, row, column) <-> (i, j, k) transpose are
:mod:`spinemri.io.convert`'s (``ras_to_lps``, ``lps_to_ras``, ``ijk_to_kji``,
``kji_to_ijk``); docs/coordinates.md explains the geometry.
"""
