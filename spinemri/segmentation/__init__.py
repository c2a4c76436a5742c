"""Per-vertebra lesion segmentation (DESIGN §4).

:mod:`~spinemri.segmentation.lesions` (:func:`~spinemri.segmentation.lesions.segment_lesions`, the
algorithm), :mod:`~spinemri.segmentation.thresholds` (thresholds and background levels from robust
marrow statistics) and :mod:`~spinemri.segmentation.bias` (N4 bias-field correction).
"""
