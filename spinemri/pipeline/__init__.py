"""The pipeline: the single-case runner, the cohort runner, its resume state and executors.

* :mod:`spinemri.pipeline.case` — one case: load, measure, encode, write (``spinemri measure``
  and each case of ``spinemri run``);
* :mod:`spinemri.pipeline.cohort` — a cohort: discover, run the cases, combine the tables,
  errors.csv, link and analyze, provenance (``spinemri run``);
* :mod:`spinemri.pipeline.state` — resume: input and parameter hashes, ``cases/<id>/state.json``;
* :mod:`spinemri.pipeline.executors` — serial, process-pool and Dask backends.

This is the only package that combines io, the numeric core and report.
"""
