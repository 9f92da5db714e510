"""snnlib: the shared library of the snn-compendium.

Every tensor that carries time is time-first, ``[T, B, ...]``, as in spikingjelly's
multi-step mode. Modules: ``neurons``, ``surrogate``, ``layers``, ``training``,
``metrics``, ``claims``, ``plotting``, ``config``, ``data`` and one module per work
under ``methods``.
"""

__version__ = "0.1.0"
