"""A stand-in for CuPy on the CPU: NumPy for the arrays, and g++ for the ElementwiseKernels' CUDA C.

Everything a generated CuPy module does besides launching kernels on a GPU runs here as written:
``cp.matmul(..., out=)``, ``cp.sum``, ``cp.take`` are NumPy's. Their arrays are ``DeviceArray``s, which
NumPy's own functions refuse as they cannot read a GPU's memory (``np.take(device_array, ...)`` raises):
code that would call NumPy on CuPy's arrays fails here too. NumPy's ufuncs and the arrays' methods work
on them, as they do on CuPy's (through ``__array_ufunc__``). An ``ElementwiseKernel`` keeps
its body as it is, wraps it in a loop over the broadcast elements (the in/out parameters becoming
C++ variables, ``T`` a template parameter), compiles it with g++ and calls it through ctypes, in
double or float as the arrays are. Kernels are compiled together, in one shared library, the first
time any of them runs, so a test session pays for a handful of compilations rather than hundreds.
"""

from __future__ import annotations

import atexit
import ctypes
import hashlib
import shutil
import subprocess
import sys
import tempfile
import types
from pathlib import Path

import numpy as np

COMPILER = shutil.which("g++")
_TYPES = {np.dtype(np.float64): ("double", ctypes.c_double), np.dtype(np.float32): ("float", ctypes.c_float)}


def _parameters(text: str) -> list[tuple[str, str]]:
    """'T x, T y' as [(type, name)]. The generated modules pass no raw arguments, so none are read."""
    parsed = []
    for piece in filter(None, (p.strip() for p in text.split(","))):
        words = piece.split()
        if len(words) != 2:
            raise ValueError(f"unsupported kernel parameter {piece!r}")
        parsed.append((words[0], words[1]))
    return parsed


class KernelLibrary:
    """The kernels of every module loaded with the stand-in, compiled in batches into shared libraries."""

    def __init__(self):
        self.folder = Path(tempfile.mkdtemp(prefix="symbp_cupy_"))
        atexit.register(shutil.rmtree, self.folder, ignore_errors=True)
        self.pending: list[ElementwiseKernel] = []
        self.compiled = 0

    def register(self, kernel) -> str:
        symbol = f"k{len(self.pending) + self.compiled}_{kernel.name}"
        self.pending.append(kernel)
        return symbol

    def source(self, kernels) -> str:
        parts = ["#include <cmath>", "using namespace std;", "#define __device__", ""]
        preambles = []
        for kernel in kernels:
            if kernel.preamble not in preambles:
                preambles.append(kernel.preamble)
        parts += preambles
        for kernel in kernels:
            parts.append(kernel.c_function())
        return "\n".join(parts)

    def compile_pending(self) -> None:
        kernels, self.pending = self.pending, []
        self.compiled += len(kernels)
        source = self.source(kernels)
        digest = hashlib.sha256(source.encode()).hexdigest()[:16]
        path = self.folder / f"kernels_{digest}.cpp"
        path.write_text(source)
        library = path.with_suffix(".so")
        # No fast-math and no contraction into fused multiply-adds: each operation rounds as written.
        # -Wdouble-promotion as an error: a float kernel that computes anything in double fails here.
        flags = ["-O1", "-shared", "-fPIC", "-ffp-contract=off", "-Wall", "-Wdouble-promotion", "-Werror"]
        result = subprocess.run([COMPILER, *flags, "-o", str(library), str(path)], capture_output=True, text=True)
        if result.returncode != 0:
            raise KernelCompileError(f"g++ rejected the kernels in {path}:\n{result.stderr}")
        loaded = ctypes.CDLL(str(library))
        for kernel in kernels:
            kernel.library = loaded


class KernelCompileError(RuntimeError):
    """g++ rejected a kernel's body (with its message)."""


LIBRARY = KernelLibrary()


class DeviceArray(np.ndarray):
    """An array on the pretend GPU: what the stand-in's functions return and take."""

    def __array_function__(self, func, types, args, kwargs):
        raise TypeError(f"numpy.{func.__name__} called on a device array; CuPy's arrays need cupy.{func.__name__} "
                        "(or the array's own method)")

    def __array_ufunc__(self, ufunc, method, *inputs, out=None, **kwargs):
        if out is not None:
            kwargs["out"] = tuple(_host(array) for array in out)
        result = getattr(ufunc, method)(*(_host(value) for value in inputs), **kwargs)
        if out is not None:
            return out[0] if len(out) == 1 else out
        return _on_device(result)


def _host(value):
    """A device array's memory as a plain NumPy array (a view: writes reach the device array)."""
    return value.view(np.ndarray) if isinstance(value, DeviceArray) else value


def _on_device(value):
    if isinstance(value, np.ndarray) and not isinstance(value, DeviceArray):
        return value.view(DeviceArray)
    if isinstance(value, tuple):
        return tuple(_on_device(item) for item in value)
    return value


def _device_function(name: str):
    """cupy.NAME: NumPy's function on the arrays' memory, its arrays returned on the device."""
    function = getattr(np, name)
    if not callable(function) or isinstance(function, type):
        return function

    def on_device(*args, **kwargs):
        return _on_device(function(*(_host(a) for a in args), **{k: _host(v) for k, v in kwargs.items()}))

    return on_device


def _asarray(value, dtype=None):
    return np.asarray(_host(value), dtype=dtype).view(DeviceArray)


def _as_strided(x, shape=None, strides=None):
    """cupy.lib.stride_tricks.as_strided: a view of x's memory with the given shape and strides (in bytes)."""
    return np.lib.stride_tricks.as_strided(_host(x), shape=shape, strides=strides).view(DeviceArray)


def _asnumpy(value):
    """The host's copy, as cupy.asnumpy makes it."""
    return np.array(_host(value))


class ElementwiseKernel:
    """cupy.ElementwiseKernel's interface, compiled for the CPU."""

    def __init__(self, in_params, out_params, operation, name="kernel", preamble="", no_return=False, **_):
        self.inputs, self.outputs = _parameters(in_params), _parameters(out_params)
        self.operation, self.name, self.preamble, self.no_return = operation, name, preamble, no_return
        self.library = None
        self.symbol = LIBRARY.register(self)

    def c_function(self) -> str:
        """The body in a loop over `size` elements, for T = double and T = float."""
        arguments = ["long size"]
        reads = []
        for _, name in self.inputs:
            arguments.append(f"const T* in_{name}")
            reads.append(f"const T {name} = in_{name}[i];")
        arguments += [f"T* out_{name}" for _, name in self.outputs]
        writes = [f"T& {name} = out_{name}[i];" for _, name in self.outputs]
        signature = ", ".join(arguments)
        body = "\n".join(["    for (long i = 0; i < size; ++i) {", *("        " + line for line in reads + writes),
                          self.operation, "    }"])
        names = ", ".join(["size", *(f"in_{n}" for _, n in self.inputs), *(f"out_{n}" for _, n in self.outputs)])
        lines = [f"template <typename T> static void {self.symbol}({signature}) {{", body, "}"]
        for c_type in ("double", "float"):
            concrete = signature.replace("T*", f"{c_type}*")
            lines.append(f'extern "C" void {self.symbol}_{c_type}({concrete}) {{ {self.symbol}<{c_type}>({names}); }}')
        return "\n".join(lines)

    def __call__(self, *args):
        if self.library is None:
            LIBRARY.compile_pending()
        args = tuple(_host(value) for value in args)
        ins, outs = args[: len(self.inputs)], args[len(self.inputs):]
        allocating = not outs
        if allocating:
            # As CuPy: outputs not given are allocated in the inputs' broadcast shape and type T.
            if self.no_return:
                raise TypeError(f"{self.name}: no output arrays given to a kernel with no_return=True")
            dtype = next(np.asarray(a).dtype for a in ins if np.ndim(a))
            outs = tuple(np.empty(np.broadcast_shapes(*(np.shape(a) for a in ins)), dtype) for _ in self.outputs)
        if len(outs) != len(self.outputs):
            raise TypeError(f"{self.name}: expected {len(self.outputs)} output arrays, got {len(outs)}")
        dtype = outs[0].dtype
        if any(np.ndim(a) and np.asarray(a).dtype != dtype for a in ins):
            raise TypeError(f"{self.name}: arrays of types {[np.asarray(a).dtype for a in ins]} for one type T")
        c_type, _ = _TYPES[dtype]
        shape = np.broadcast_shapes(*(np.shape(a) for a in ins), *(o.shape for o in outs))
        for out in outs:
            if out.shape != shape:
                raise ValueError(f"{self.name}: output of shape {out.shape}, broadcast shape {shape}")
        # Scalars are broadcast too: every parameter is read as an array of T, one value per element.
        buffers = [np.ascontiguousarray(np.broadcast_to(np.asarray(a, dtype=dtype), shape)) for a in ins]
        results = [np.empty(shape, dtype) for _ in outs]
        pointer = ctypes.POINTER(_TYPES[dtype][1])
        function = getattr(self.library, f"{self.symbol}_{c_type}")
        function(ctypes.c_long(int(np.prod(shape))), *(b.ctypes.data_as(pointer) for b in buffers),
                 *(r.ctypes.data_as(pointer) for r in results))
        for out, result in zip(outs, results):
            out[...] = result
        outs = tuple(_on_device(out) for out in outs) if allocating else outs
        return None if self.no_return else (outs[0] if len(outs) == 1 else tuple(outs))


def stand_in() -> types.ModuleType:
    """A module named cupy: NumPy's functions on DeviceArrays, asnumpy, and the compiling ElementwiseKernel."""
    module = types.ModuleType("cupy")
    module.__getattr__ = _device_function
    module.asarray = _asarray
    module.asnumpy = _asnumpy
    module.ndarray = DeviceArray
    module.ElementwiseKernel = ElementwiseKernel
    module.lib = types.SimpleNamespace(stride_tricks=types.SimpleNamespace(as_strided=_as_strided))
    return module


def install() -> None:
    """Makes `import cupy` give the stand-in (for the modules imported after)."""
    sys.modules["cupy"] = stand_in()
