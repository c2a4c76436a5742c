"""Numpy building blocks on label volumes, shared by the segmentation and the metrics.

:mod:`~spinemri.arrays.bbox` (bounding box of the labels),
:mod:`~spinemri.arrays.labels` (label values check, per-label counts and centroids),
:mod:`~spinemri.arrays.grouped` (grouped sorts, exact medians, MADs, means, quantiles, histograms) and
:mod:`~spinemri.arrays.morphology` (box erosion of every label, depth classes, flat-index shifts).
Pure numpy (and :mod:`spinemri._kernels`), no I/O.
"""
