"""snnlib: the shared library of the snn-compendium.

Every tensor that carries time is time-first, ``[T, B, ...]``, as in spikingjelly's
multi-step mode. Modules: ``neurons``, ``surrogate``, ``layers``, ``training``,
``metrics``, ``claims``, ``plotting``, ``config``, ``data`` and one module per work
under ``methods``.
"""

__version__ = "0.1.0"

import logging as _logging

# spikingjelly 2.0's first forward on a CPU-only torch logs "Triton not available" as a
# warning through this logger; it is expected here and says nothing about the results.
_logging.getLogger("torch._library.triton").setLevel(_logging.ERROR)
