"""The study's statistics: VAS against involvement pattern and marrow burden.

Pure: a linked DataFrame in (patients.csv joined to VAS by :func:`spinemri.link`), frozen
result objects out. No file I/O. The choice of each test and its parameters is explained in
docs/statistics.md. What is where:

- :mod:`spinemri.stats.study` — :func:`~spinemri.stats.study.analyze`, the whole analysis of a
  linked table (public as :func:`spinemri.analyze`), and :data:`~spinemri.stats.study.SPEARMAN_PAIRS`.
- :mod:`spinemri.stats.methods` — the statistical methods: ``describe``, ``holm_adjust``,
  ``kruskal_by_group``, ``compare_two_groups``, ``spearman_with_ci``, ``ols_hc3``,
  ``pain_category``, ``ordinal_logit``, ``delong_auc``, ``cv_auc`` (and ``REGION_ORDER``,
  ``PAIN_CATEGORIES``).
- :mod:`spinemri.stats.results` — the frozen result classes (``NotComputable``,
  ``GroupSummary``, ``PairwiseTest``, ``KruskalResult``, ``MannWhitneyResult``,
  ``SpearmanResult``, ``Coefficient``, ``OLSResult``, ``OrdinalResult``, ``PredictionResult``)
  and :class:`~spinemri.stats.results.Analysis` with its strict-JSON and table forms.

Importing this package imports none of them; import the module that defines a name.
"""
