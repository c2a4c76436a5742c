"""The compiled kernels (``spinemri/_kernels.pyx``), imported once with a clear message when absent.

They are built when spinemri is installed (``pip install .``, or ``pip install -e .`` in a
checkout); running from a source tree that was never installed finds no extension module.
"""

from __future__ import annotations

try:
    from . import _kernels as kernels
except ImportError as exc:  # pragma: no cover - depends on how the package was installed
    raise ImportError(
        "spinemri's compiled kernels (spinemri/_kernels.pyx) are not built: install spinemri with "
        "`pip install .` (in a development checkout `pip install -e .`, or "
        "`python setup.py build_ext --inplace` after editing the .pyx); a C compiler is needed"
    ) from exc

__all__ = ["kernels"]
