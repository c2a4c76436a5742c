"""What the report layer needs from an analysis, as a structural type (no import of the stats package).

:class:`~spinemri.stats.results.Analysis` satisfies :class:`AnalysisLike`; the report
functions accept any object that does, so the report layer depends on this description only.
"""

from __future__ import annotations

from typing import Any, Protocol

import pandas as pd

__all__ = ["AnalysisLike"]


class AnalysisLike(Protocol):
    """An analysis as the figures and the HTML report read it.

    Attributes
    ----------
    data : pandas.DataFrame
        The analysed columns (``patient_id, vas, pain_category, dominant_region,
        lumbar_involved`` and the metrics), read by the figures.
    tables : dict of str to pandas.DataFrame
        The results as tidy tables by name, written as CSV.
    """

    @property
    def data(self) -> pd.DataFrame: ...

    @property
    def tables(self) -> dict[str, pd.DataFrame]: ...

    def to_dict(self) -> dict[str, Any]:
        """The results as a strict-JSON dict (summary.json without the software versions).

        Returns
        -------
        dict of str to Any
            Keys ``n_patients``, ``n_with_vas``, ``descriptives``, ``vas_by_dominant_region``,
            ``lumbar_vs_non_lumbar``, ``spearman``, ``regression``, ``prediction``, ``warnings``
            and ``parameters``.
        """
        ...
