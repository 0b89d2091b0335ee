"""The jobs the product runs: plain functions over ``Settings`` that return typed reports and raise
typed errors (``crm_analytics.errors``). The CLI, the notebooks and the scheduler call them; the layers
below never do. One module per job and per pipeline stage:

``data`` (demo and CDNOW files), ``ingest``, ``profiles``, ``features``, ``segments``, ``train``
(and promotion), ``evaluate`` (with ``evaluation_data``), ``score`` (with ``score_rows``,
``score_table``, ``score_spark``), ``feedback``, ``erase`` and ``run`` (the whole pipeline on the demo).
"""
