"""The ASGI app for ``uvicorn crm_analytics.serving.asgi:app`` (each worker builds its own from settings).

Workers predict single-threaded: a request scores a handful of rows, for which OpenMP's thread start-up
and spin-waiting cost far more than the trees (measured: 10x slower with 2 threads on 2 busy cores).
``OMP_NUM_THREADS`` covers the request threads too (a thread-pool limit applies to the calling thread).
Throughput comes from running several workers instead.
"""

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")  # before numpy/sklearn load OpenMP: covers every thread

from threadpoolctl import threadpool_limits

from crm_analytics.serving.app import create_app
from crm_analytics.settings import load_settings

threadpool_limits(1)
app = create_app(load_settings(), freeze_heap=True)  # a worker's heap: see serving/heap.py
