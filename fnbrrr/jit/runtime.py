"""Runtime: write generated modules to the disk cache, compile them, and call them.

Generated source is content-addressed: `$FNBRRR_CACHE_DIR/fnbrrr_<hash>.py` (default
`~/.cache/fnbrrr/jit`). Numba's `cache=True` keeps the machine code beside it, so a new process
that traces the same program finds the same file and skips compilation (PERF.md fact 8:
functions made with `exec` cannot be cached, real files can).

Buffers (PERF.md fact 5): outputs are fresh NumPy arrays allocated on the calling thread;
intermediates come from a per-executable pool and are reused across calls. Each call takes a
set from the pool (or makes one when another thread holds it), so concurrent calls never share
an intermediate.
"""

from __future__ import annotations

import contextlib
import gc
import importlib.util
import os
import sys
import tempfile
import threading

import numpy as np

from fnbrrr.jit.blas import gemm_address
from fnbrrr.jit.codegen import Generated

_FALLBACKS: dict[str, dict] = {}  # module -> fallback name -> (primitive, params, n_inputs)
_MODULES: dict[str, object] = {}
_LOCK = threading.Lock()
_COMPILE_LOCK = threading.Lock()  # a module's signature check, compile and lock go together


def cache_dir() -> str:
    """Where generated modules and Numba's compiled code are kept."""
    path = os.environ.get("FNBRRR_CACHE_DIR")
    if not path:
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        path = os.path.join(base, "fnbrrr", "jit")
    os.makedirs(path, exist_ok=True)
    return path


def clear_disk_cache() -> int:
    """Delete every generated module and compiled kernel in `cache_dir()`; returns the count.

    The cache is content-addressed and never invalid, only large: clear it to reclaim space.
    """
    import shutil

    path = cache_dir()
    count = sum(len(files) for _, _, files in os.walk(path))
    shutil.rmtree(path, ignore_errors=True)
    os.makedirs(path, exist_ok=True)
    return count


def load_module(generated: Generated):
    """Write (once) and import the generated module; returns it."""
    name = f"fnbrrr_{generated.key}"
    with _LOCK:
        module = _MODULES.get(name)
        if module is not None:
            return module
        path = os.path.join(cache_dir(), name + ".py")
        if not os.path.exists(path):
            fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), suffix=".tmp")
            with os.fdopen(fd, "w") as f:
                f.write(generated.source)
            os.replace(tmp, path)  # atomic: a concurrent process sees all or nothing
        _FALLBACKS[name] = dict(generated.fallbacks)
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
        _MODULES[name] = module
        return module


def fallback_call(prim_name: str, fallback: str, module_name: str, arrays) -> None:
    """Object-mode bridge: run a primitive's NumPy impl and write into its output buffers."""
    prim, params, n_inputs = _FALLBACKS[module_name][fallback]
    result = prim.impl(*arrays[:n_inputs], **params)
    results = result if prim.multiple_results else [result]
    for buffer, value in zip(arrays[n_inputs:], results):
        buffer[...] = value


@contextlib.contextmanager
def _collector_paused():
    """Pause Python's cyclic garbage collector: Numba's compiler allocates millions of objects,
    and the collections they trigger cost 8-10 % of a compilation. Collection resumes after
    (if it was on), so the cycles the compiler left behind are freed as usual."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


class _LazyBlasCheck:
    """Numba's "is SciPy's BLAS importable?" flag, computed the first time it is read."""

    def __init__(self, check):
        self._check = check
        self._value = None

    def __bool__(self) -> bool:
        if self._value is None:
            try:
                self._check()
                self._value = True
            except ImportError:
                self._value = False
        return self._value


def defer_numba_blas_check() -> None:
    """Keep Numba's start-up from importing SciPy's linalg when nothing needs it.

    Numba's first compilation or disk-cache load in a process imports `numba.np.arraymath`,
    whose import sets `_HAVE_BLAS` by importing `scipy.linalg` (0.2-0.4 s here, with
    `numpy.f2py`): a third of a cached first call. The flag is read only when typing
    `np.dot`/`np.vdot`, which generated code never calls (BLAS goes through `blas.py`), so it
    becomes lazy: the same check, run on first use. Does nothing if Numba already loaded it.
    """
    if "numba.np.arraymath" in sys.modules:
        return
    with _LOCK:  # two threads must not swap ensure_blas at once
        if "numba.np.arraymath" in sys.modules:
            return
        from numba.np import linalg

        check = linalg.ensure_blas
        linalg.ensure_blas = lambda: None
        try:
            from numba.np import arraymath
        finally:
            linalg.ensure_blas = check
        if type(getattr(arraymath, "_HAVE_BLAS", None)) is bool:
            arraymath._HAVE_BLAS = _LazyBlasCheck(check)


def _numba_type(spec):
    """The Numba type the program is compiled for: inputs and constants as read-only arrays.

    The program never writes them, and a read-only signature accepts writeable arrays as well
    (a safe conversion), so an input that happens to be read-only (a captured constant, a view
    of immutable memory) does not make Numba compile the whole program a second time.
    """
    from numba import from_dtype, types

    readonly = spec.role in ("input", "const")
    return types.Array(from_dtype(spec.dtype), len(spec.shape), "C", readonly=readonly)


class Executable:
    """A compiled program: call it with flat NumPy inputs, get flat NumPy outputs."""

    def __init__(self, generated: Generated, consts: list, out_avals: list):
        self.generated = generated
        self.module = load_module(generated)
        self.function = self.module.program
        self.driver = self.module.call
        self.consts = [np.ascontiguousarray(np.asarray(c)) for c in consts]
        self.out_avals = out_avals
        self.blas = [gemm_address(d)[0] for d in generated.uses_blas]
        self.pool: list = []  # sets of intermediate buffers, one per concurrent call
        self._compiled = False

    def compile(self) -> None:
        """Compile now (or load from Numba's disk cache) for the program's argument types."""
        if self._compiled:
            return
        from numba import types

        defer_numba_blas_check()

        sig = tuple(_numba_type(s) for s in self.generated.args) + tuple(
            types.intp for _ in self.blas)
        with _COMPILE_LOCK, _collector_paused():
            for function in getattr(self.module, "STEPS", [self.function]):
                if sig not in function.overloads:  # another executable of the same module
                    function.compile(sig)
                    # Calls now convert to this signature instead of compiling another one.
                    function.disable_compile()
        self._compiled = True

    def __call__(self, inputs: list) -> list:
        """Run on C-contiguous NumPy inputs of the program's dtypes."""
        return self.driver(inputs, self.consts, self.pool, self.blas)
