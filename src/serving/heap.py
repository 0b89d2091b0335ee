"""A worker's long-lived heap kept out of the garbage collector's full passes (``gc.freeze``).

After start-up a worker holds a few million objects that live as long as it does: the libraries, the
models, the catalogues, the name index. A full (generation 2) collection walked all of them every time
the new objects since the last one added up: 220-280 ms in which every request on that worker waited
(``gc.callbacks`` in ``crm serve`` under benchmarks/serving_throughput.py on 2026-12-08: one or two such
pauses a minute after start, which alone made a 10 s run's p99 86-97 ms instead of 7 ms). Freezing moves
what is alive to a permanent generation that collections skip, so they walk only the objects made since.

``settle`` is called where that heap changes: once the models are loaded at start, when a new name index
is ready, after a reload that changed the served set (not at a check that loads nothing new, nor when a
champion that does not load is tried again). The app drops its offer ranker first, which holds the
models and the catalogue. It unfreezes and collects, so what the change left behind (a replaced model,
the previous index) is freed rather than kept frozen: that one collection is the ~250 ms pause again,
once per snapshot or model change instead of once or twice a minute.
"""

from __future__ import annotations

import gc
import threading

_settling = threading.Lock()  # the name index settles from its own thread


def settle() -> None:
    """Collect everything unreachable, then freeze what is alive now."""
    with _settling:
        gc.unfreeze()
        gc.collect()
        gc.freeze()
