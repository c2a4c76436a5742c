"""Therapy guidance: SINS components per vertebra, the canal / cord screening, the planning summary.

Pure numeric core (Volumes / arrays / DataFrames in and out, no I/O):
:mod:`~spinemri.guidance.params` (:class:`GuidanceParams`, :class:`CanalParams`),
:mod:`~spinemri.guidance.sins` (points, ranges, category), :mod:`~spinemri.guidance.bodies`
(each level's body and axes), :mod:`~spinemri.guidance.components` (body involvement,
posterolateral involvement, alignment), :mod:`~spinemri.guidance.canal` (experimental canal /
cord screening), :mod:`~spinemri.guidance.planning` (per-patient planning summary) and
:mod:`~spinemri.guidance.case` (:func:`guidance_case`, one case). Decision support, not a
diagnosis or a treatment recommendation. See docs/guidance.md and docs/metrics.md ("SINS
components and planning summary").
"""

from .case import GUIDANCE_STRUCTURES, guidance_case
from .params import CanalParams, GuidanceParams
from .sins import SINS_COLUMNS, category_range, score_sins

__all__ = [
    "GUIDANCE_STRUCTURES",
    "SINS_COLUMNS",
    "CanalParams",
    "GuidanceParams",
    "category_range",
    "guidance_case",
    "score_sins",
]
