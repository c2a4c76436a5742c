"""Vertebral body morphometry: heights, expected height, Genant grade, SINS collapse, follow-up events.

Pure numeric core (Volumes / arrays / DataFrames in and out, no I/O):
:mod:`~spinemri.morphometry.params` (:class:`HeightParams`),
:mod:`~spinemri.morphometry.geometry` (the body's own axes and its heights on a mask),
:mod:`~spinemri.morphometry.split` (the body of a whole-vertebra mask, by the canal),
:mod:`~spinemri.morphometry.grading` (expected height, loss, Genant grade, collapse, follow-up) and
:mod:`~spinemri.morphometry.table` (:func:`vertebra_heights`). See docs/metrics.md
("Body heights and collapse").
"""

from .grading import COLLAPSE_CATEGORIES, collapse_category, compare_heights, genant_grade, grade_heights
from .params import HeightParams
from .table import HEIGHT_COLUMNS, vertebra_heights

__all__ = [
    "COLLAPSE_CATEGORIES",
    "HEIGHT_COLUMNS",
    "HeightParams",
    "collapse_category",
    "compare_heights",
    "genant_grade",
    "grade_heights",
    "vertebra_heights",
]
