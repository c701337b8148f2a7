"""qmv - quantized matrix-vector products in MLX's layouts, with one exact result.

    import numpy as np, qmv
    w = np.random.default_rng(0).standard_normal((256, 512), dtype=np.float32)
    w_q, scales, biases = qmv.quantize(w, mode="affine", bits=4, group_size=64)
    x = np.ones(512, np.float32)
    y = qmv.matvec(x, w_q, scales, biases, mode="affine", bits=4, group_size=64)
    assert qmv.verify(y, x, w_q, scales, biases, mode="affine", bits=4, group_size=64).ok

quantize / dequantize return exactly the bytes mx.quantize / mx.dequantize return (profile
"mlx-cpu"; "mlx-cuda" for MLX's CUDA build), matvec the canonical result of docs/ORDER.md.

Inputs are numpy arrays or any DLPack producer (PyTorch, MLX, CuPy, JAX) in host memory,
used in place (zero-copy): float32, float16, bfloat16 (numpy's through ml_dtypes, or uint16
bit patterns with an explicit dtype argument); packed codes uint32 (int32 accepted), fp-mode
scales uint8. Rows may be padded (a row stride); other non-dense layouts raise ValueError,
wrong element types TypeError, device (GPU) arrays ValueError. Results are new numpy arrays;
bfloat16 results are ml_dtypes.bfloat16 when ml_dtypes is installed, else uint16 bit
patterns. A failing C call raises QmvError with the library's status and message.

Design: a ctypes layer over the shared libqmv that `pip install .` builds with the project's
CMake and installs beside this file; no compiled extension. ctypes releases the GIL during
every C call, so quantize, dequantize and matvec run while other Python threads continue, and
the library's own OpenMP threads do the parallel work. The binding covers the CPU library;
device arrays are refused with a clear error (qmv's CUDA backend is a C API, qmv_cuda.h).
$QMV_LIBRARY names another shared libqmv to load (a build tree's, for example).
"""
import ctypes
import threading
from collections import namedtuple

import numpy as np

from . import _arrays, _capi
from ._capi import QmvError

__all__ = ["quantize", "dequantize", "matvec", "verify", "orders", "version", "order_version",
           "load_library", "QmvError", "Order", "Verification"]

_lock = threading.Lock()
_library = None


def _lib():
    global _library
    with _lock:
        if _library is None:
            _library = _capi.Library(_capi.package_library_path())
        return _library


def load_library(path):
    """Uses the shared libqmv at `path` for every later call of this module, instead of the
    one installed with the package (or named by $QMV_LIBRARY)."""
    global _library
    lib = _capi.Library(path)
    with _lock:
        _library = lib


def version():
    """The loaded library's version string, e.g. "0.1.0" (include/qmv.h)."""
    return _lib().lib.qmv_version_string().decode()


def order_version():
    """The version of the canonical evaluation order (docs/ORDER.md)."""
    return int(_lib().lib.qmv_order_version())


Order = namedtuple("Order", "index name emulates confirmation confirmed")


def orders():
    """The accumulation orders the library knows (qmv_order_count / qmv_order_get), as a list
    of Order(index, name, emulates, confirmation, confirmed); order 0 is the canonical one."""
    L = _lib()
    out = []
    for i in range(L.lib.qmv_order_count()):
        info = _capi.OrderInfo()
        L.check(L.lib.qmv_order_get(i, ctypes.byref(info)), "qmv_order_get")
        out.append(Order(i, info.name.decode(), info.emulates.decode(),
                         info.confirmation.decode(), bool(info.confirmed)))
    return out


def _dtype_arg(value, what):
    """A dtype argument given as a name ("bfloat16"), a numpy dtype or an MLX/torch dtype."""
    if value is None:
        return None
    name = value if isinstance(value, str) else str(getattr(value, "name", value))
    name = name.rsplit(".", 1)[-1]  # mlx.core.bfloat16 / torch.bfloat16
    if name not in _arrays.FLOAT_NAMES:
        raise TypeError(f"qmv: {what} must be one of {', '.join(_arrays.FLOAT_NAMES)}, "
                        f"got {value!r}")
    return name


def _profile_arg(profile):
    if profile not in _capi.PROFILES:
        raise ValueError(f"qmv: unknown profile {profile!r}: expected one of "
                         f"{', '.join(_capi.PROFILES)}")
    return _capi.PROFILES[profile]


def _global_scale(mode, global_scale):
    if global_scale is None:
        return None
    if mode != "nvfp4":
        raise ValueError(f"qmv: global_scale is for mode 'nvfp4' only, not {mode!r}")
    g = np.asarray(global_scale, dtype=np.float32)  # MLX passes it as a one-element array
    if g.size != 1:
        raise ValueError(f"qmv: global_scale must be one number, got shape {g.shape}")
    return ctypes.c_float(float(g.reshape(()))), float(g.reshape(()))


def quantize(w, *, mode="affine", bits=None, group_size=None, profile="mlx-cpu",
             global_scale=None, w_dtype=None, num_threads=0):
    """Quantizes w [rows, k] as mx.quantize does.

    Returns (w_q, scales, biases) for mode "affine" (scales and biases in w's dtype) and
    (w_q, scales) for "mxfp4", "nvfp4", "mxfp8" (uint8 scales), like mx.quantize; w_q is
    uint32 [rows, k * bits / 32]. bits / group_size default to MLX's defaults for the mode.
    profile: "mlx-cpu" (mx.quantize on MLX's CPU stream), "mlx-cuda" or "ocp".
    global_scale: nvfp4 only (a number or one-element array). w_dtype: the float type of a
    uint16 w ("bfloat16" or "float16"). Raises QmvError NON_FINITE for NaN/Inf in w.
    """
    L = _lib()
    fmt = L.format(mode, bits, group_size)
    v = _arrays.view("w", w)
    wt = _arrays.float_type(v, _dtype_arg(w_dtype, "w_dtype"), "w_dtype")
    if len(v.shape) != 2:
        raise ValueError(f"qmv: w must be a matrix [rows, k], got shape {v.shape}")
    rows, k = v.shape
    lay = L.layout(fmt, wt, rows, k)
    packed = np.empty((rows, lay.words_per_row), np.uint32)
    if mode == "affine":
        scales = _arrays.empty((rows, lay.groups_per_row), wt)
        biases = _arrays.empty((rows, lay.groups_per_row), wt)
    else:
        scales = np.empty((rows, lay.groups_per_row), np.uint8)
        biases = None
    out = _capi.QuantOut(packed.ctypes.data, packed.nbytes, scales.ctypes.data, scales.nbytes,
                         biases.ctypes.data if biases is not None else None,
                         biases.nbytes if biases is not None else 0)
    g = _global_scale(mode, global_scale)
    ex = L.exec(num_threads)
    st = L.lib.qmv_quantize(ctypes.byref(fmt), _profile_arg(profile),
                            ctypes.byref(g[0]) if g else None, _capi.DTYPES[wt], v.ptr,
                            v.nbytes, rows, k, v.row_stride, ctypes.byref(out), ctypes.byref(ex))
    L.check(st, "qmv_quantize")
    return (packed, scales, biases) if mode == "affine" else (packed, scales)


def _qmatrix(L, w_q, scales, biases, mode, bits, group_size, scale_dtype, global_scale):
    """The qmv_qmatrix of the caller's arrays, the views that must stay alive, and k."""
    fmt = L.format(mode, bits, group_size)
    pv = _arrays.view("w_q", w_q)
    if pv.elem != "uint32":
        raise TypeError(f"qmv: w_q must hold uint32 (or int32) packed words, got {pv.elem}")
    if len(pv.shape) != 2:
        raise ValueError(f"qmv: w_q must be [rows, words], got shape {pv.shape}")
    rows, words = pv.shape
    k = words * 32 // fmt.bits
    if k * fmt.bits != words * 32:
        raise ValueError(f"qmv: w_q has {words} words per row, not a whole number of "
                         f"{fmt.bits}-bit elements")
    sv = _arrays.view("scales", scales)
    keep = [pv, sv]
    if mode == "affine":
        if biases is None:
            raise ValueError("qmv: mode 'affine' needs biases")
        bv = _arrays.view("biases", biases)
        keep.append(bv)
        sdt = _arrays.float_type(sv, _dtype_arg(scale_dtype, "scale_dtype"), "scale_dtype")
        bdt = _arrays.float_type(bv, _dtype_arg(scale_dtype, "scale_dtype"), "scale_dtype")
        if bdt != sdt:
            raise TypeError(f"qmv: scales are {sdt} but biases are {bdt}")
        if bv.shape != sv.shape or bv.row_stride != sv.row_stride:
            raise ValueError(f"qmv: biases (shape {bv.shape}, row stride {bv.row_stride}) must "
                             f"match scales (shape {sv.shape}, row stride {sv.row_stride})")
    else:
        if biases is not None:
            raise ValueError(f"qmv: mode {mode!r} has no biases")
        if sv.elem != "uint8":
            raise TypeError(f"qmv: {mode} scales must be uint8 codes, got {sv.elem}")
        sdt, bv = "float32", None  # ignored for fp modes
    lay = L.layout(fmt, sdt, rows, k)
    if sv.shape != (rows, lay.groups_per_row):
        raise ValueError(f"qmv: scales must be [{rows}, {lay.groups_per_row}] for w_q "
                         f"{pv.shape} in {mode} {fmt.bits}-bit groups of {fmt.group_size}, "
                         f"got {sv.shape}")
    q = _capi.QMatrix()
    q.format = fmt
    q.scale_dtype = _capi.DTYPES[sdt]
    q.rows, q.k = rows, k
    q.packed, q.packed_bytes, q.packed_row_stride = pv.ptr, pv.nbytes, pv.row_stride
    q.scales, q.scales_bytes, q.scales_row_stride = sv.ptr, sv.nbytes, sv.row_stride
    if bv is not None:
        q.biases, q.biases_bytes = bv.ptr, bv.nbytes
    g = _global_scale(mode, global_scale)
    if g:
        keep.append(g[0])
        q.global_scale = ctypes.pointer(g[0])
    return q, keep, k, sdt


def dequantize(w_q, scales, biases=None, *, mode="affine", bits=None, group_size=None,
               global_scale=None, dtype=None, scale_dtype=None, num_threads=0):
    """Expands a quantized matrix into [rows, k] of dtype, as mx.dequantize does (dtype
    defaults to the scales' dtype for affine and bfloat16 otherwise,
    as in MLX). scale_dtype: the float type of uint16 affine scales and biases."""
    L = _lib()
    q, keep, k, sdt = _qmatrix(L, w_q, scales, biases, mode, bits, group_size, scale_dtype,
                               global_scale)
    dt = _dtype_arg(dtype, "dtype") or (sdt if mode == "affine" else "bfloat16")
    out = _arrays.empty((q.rows, k), dt)
    ex = L.exec(num_threads)
    L.check(L.lib.qmv_dequantize(ctypes.byref(q), _capi.DTYPES[dt], out.ctypes.data,
                                 out.nbytes, k, ctypes.byref(ex)), "qmv_dequantize")
    del keep
    return out


def _vectors(x, k, x_dtype):
    xv = _arrays.view("x", x)
    xt = _arrays.float_type(xv, _dtype_arg(x_dtype, "x_dtype"), "x_dtype")
    if xv.shape[-1] != k:
        raise ValueError(f"qmv: x has {xv.shape[-1]} elements per vector but w_q has k = {k}")
    m = xv.shape[0] if len(xv.shape) == 2 else 1
    if m < 1:
        raise ValueError("qmv: x has no vectors")
    return xv, xt, m


def _run(L, q, xv, xt, m, y_dtype, order, num_threads, y_shape):
    y = _arrays.empty(y_shape, y_dtype)
    v = _capi.Vectors(1, m, _capi.DTYPES[xt], xv.ptr, xv.nbytes, xv.row_stride, 0,
                      _capi.DTYPES[y_dtype], y.ctypes.data, y.nbytes, q.rows, 0)
    if order is None:
        ex = L.exec(num_threads)
        L.check(L.lib.qmv_qmv(ctypes.byref(q), ctypes.byref(v), ctypes.byref(ex)), "qmv_qmv")
    else:
        idx = ctypes.c_int()
        L.check(L.lib.qmv_order_find(str(order).encode(), ctypes.byref(idx)), "qmv_order_find")
        if idx.value == 0:  # the canonical order: its literal implementation
            L.check(L.lib.qmv_qmv_reference(ctypes.byref(q), ctypes.byref(v)),
                    "qmv_qmv_reference")
        else:
            L.check(L.lib.qmv_qmv_order(idx.value, ctypes.byref(q), ctypes.byref(v)),
                    "qmv_qmv_order")
    return y


def matvec(x, w_q, scales, biases=None, *, mode="affine", bits=None, group_size=None,
           global_scale=None, dtype=None, x_dtype=None, scale_dtype=None, order=None,
           num_threads=0):
    """y = x . W^T for x [k] or [m, k] (y [n] or [m, n]): qmv's canonical result
    (docs/ORDER.md), identical on every CPU tier and thread count, as
    mx.quantized_matmul(x, w_q, scales, biases, transpose=True, ...) computes it up to
    summation order. dtype: y's type (default x's). order: the name of an accumulation order
    from orders() to compute it in instead (None: the canonical order on the fastest CPU path;
    "qmv-v1": the same bits from the scalar reference)."""
    L = _lib()
    q, keep, k, _ = _qmatrix(L, w_q, scales, biases, mode, bits, group_size, scale_dtype,
                             global_scale)
    xv, xt, m = _vectors(x, k, x_dtype)
    yt = _dtype_arg(dtype, "dtype") or xt
    y_shape = (m, q.rows) if len(xv.shape) == 2 else (q.rows,)
    y = _run(L, q, xv, xt, m, yt, order, num_threads, y_shape)
    del keep, xv
    return y


Verification = namedtuple("Verification", "ok mismatches first expected order summary",
                          defaults=(None,))


def verify(y, x, w_q, scales, biases=None, *, mode="affine", bits=None, group_size=None,
           global_scale=None, order="qmv-v1", check="exact", accum="float32", p=None,
           allow_unchecked=False, allow_weak=False, y_dtype=None, x_dtype=None,
           scale_dtype=None):
    """Checks y, an output computed elsewhere, against x . W^T with the library's qmv_verify()
    (docs/VERIFY.md), as `qmv verify` does:
    - check="exact": bit for bit against `order` (an order of orders(); "qmv-v1", qmv's own,
      for any qmv path or GPU; "mlx-0.32.4-cpu" for MLX's CPU quantized_matmul, ...);
    - check="bound": within a rigorous error bound for any summation order at accumulation
      precision `accum` ("float32", "float16", "bfloat16");
    - check="stat": within a probabilistic bound whose false-alarm probability per element is at
      most p (default 1e-9) for implementations accumulating in `accum` in an unknown order.
    Returns Verification(ok, mismatches, first, expected, order, summary): ok is False when an
    element fails, or (unless allowed) is unchecked or weak (no detection power), or nothing
    was checked; mismatches the failing elements; first the index of the first (None if none);
    expected the exact check's array (None otherwise); summary a dict of qmv_verify's summary
    (counts per class, worst element, detectable error, max abs/rel error, NMSE).
    y_dtype: the float type of a uint16 y (default: x's dtype, as matvec)."""
    if check not in _capi.VERIFY_MODES:
        raise ValueError(f"qmv: check must be one of {sorted(_capi.VERIFY_MODES)}, got {check!r}")
    L = _lib()
    q, keep, k, _ = _qmatrix(L, w_q, scales, biases, mode, bits, group_size, scale_dtype,
                             global_scale)
    xv, xt, m = _vectors(x, k, x_dtype)
    yv = _arrays.view("y", y)
    ydt = _dtype_arg(y_dtype, "y_dtype")
    if ydt is None and yv.elem == "uint16" and xt != "float32":
        ydt = xt  # matvec's default: y in x's dtype (bfloat16 bits without ml_dtypes)
    yt = _arrays.float_type(yv, ydt, "y_dtype")
    y_shape = (m, q.rows) if len(xv.shape) == 2 else (q.rows,)
    if yv.shape != y_shape:
        raise ValueError(f"qmv: y must have shape {y_shape} for x {xv.shape} and w_q with "
                         f"{q.rows} rows, got {yv.shape}")
    idx = ctypes.c_int()
    if check == "exact":
        L.check(L.lib.qmv_order_find(str(order).encode(), ctypes.byref(idx)), "qmv_order_find")
    acc = _dtype_arg(accum, "accum") or "float32"
    opts = _capi.VerifyOptions(_capi.VERIFY_MODES[check], idx.value, _capi.DTYPES[acc],
                               0.0 if p is None else float(p))
    v = _capi.Vectors(1, m, _capi.DTYPES[xt], xv.ptr, xv.nbytes, xv.row_stride, 0,
                      _capi.DTYPES[yt], yv.ptr, yv.nbytes, yv.row_stride, 0)
    s = _capi.VerifySummary()
    L.check(L.lib.qmv_verify(ctypes.byref(q), ctypes.byref(v), ctypes.byref(opts), None, 0,
                             ctypes.byref(s)), "qmv_verify")
    expected = _run(L, q, xv, xt, m, yt, order, 0, y_shape) if check == "exact" else None
    del keep, xv, yv
    n_pass, n_fail, n_unch, n_weak = (int(c) for c in s.count)
    summary = {"total": int(s.total), "pass": n_pass, "fail": n_fail, "unchecked": n_unch,
               "weak": n_weak, "worst": None if s.worst < 0 else int(s.worst),
               "worst_ratio": s.worst_ratio, "detect_median": s.detect_median,
               "detect_worst": s.detect_worst, "max_abs_error": s.max_abs_error,
               "max_rel_error": s.max_rel_error, "nmse": s.nmse}
    first = None
    if s.first_fail >= 0:
        first = tuple(int(i) for i in np.unravel_index(int(s.first_fail), y_shape))
    checked = n_pass + n_fail + n_weak
    ok = (n_fail == 0 and checked > 0 and (allow_unchecked or n_unch == 0)
          and (allow_weak or n_weak == 0))
    return Verification(ok, n_fail, first, expected, order if check == "exact" else None,
                        summary)
