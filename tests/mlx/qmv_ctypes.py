"""qmv_ctypes.py - the call shapes tests/mlx/mlx_diff.py uses, on the qmv Python package.

The binding itself is the package in python/qmv/ (the ctypes declarations live only in
python/qmv/_capi.py); this file loads it from the source tree, points it at the shared library
under test and keeps mlx_diff's positional call style:

    lib = Qmv("/path/to/libqmv.so")      # a shared build of the library (BUILD_SHARED_LIBS=ON)
    packed, scales, biases = lib.quantize("affine", 4, 64, "float32", w)
    out = lib.dequantize("affine", 4, 64, "float32", packed, scales, biases, k, "float16")
    y = lib.qmv("affine", 4, 64, "float32", packed, scales, biases, k, x, "float32", "float32")

Dtypes are named as MLX names them ("float32", "float16", "bfloat16"); float16 and bfloat16
data travel as uint16 bit patterns, float32 as float32 (NP_STORAGE), in and out.
"""
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "python"))
import qmv  # noqa: E402  (python/qmv from this source tree)
from qmv._capi import STATUS_NON_FINITE, STATUS_OK, QmvError  # noqa: E402,F401

# numpy storage type of each dtype's elements
NP_STORAGE = {"float32": np.float32, "float16": np.uint16, "bfloat16": np.uint16}


def _storage(a, dtype_name):
    return None if a is None else a.view(NP_STORAGE[dtype_name])


class Qmv:
    def __init__(self, path, num_threads=0):
        self.path = os.path.abspath(path)
        self.threads = num_threads
        qmv.load_library(self.path)

    def version(self):
        return qmv.version()

    def order_version(self):
        return qmv.order_version()

    def quantize(self, mode, bits, group_size, w_dtype, w, global_scale=None,
                 profile="mlx-cpu"):
        """w: [rows, k] in NP_STORAGE[w_dtype]. Returns (packed uint32 [rows, words],
        scales [rows, groups] (uint8, or w's storage type for affine), biases or None)."""
        r = qmv.quantize(np.ascontiguousarray(w), mode=mode, bits=bits, group_size=group_size,
                         profile=profile, global_scale=global_scale,
                         w_dtype=None if w_dtype == "float32" else w_dtype,
                         num_threads=self.threads)
        if mode != "affine":
            return r[0], r[1], None
        return r[0], _storage(r[1], w_dtype), _storage(r[2], w_dtype)

    def quantize_status(self, mode, bits, group_size, w_dtype, w, global_scale=None):
        """The status of qmv_quantize (no exception), for error-path checks."""
        try:
            self.quantize(mode, bits, group_size, w_dtype, w, global_scale)
            return STATUS_OK
        except QmvError as e:
            return e.status

    def _sdt(self, mode, scale_dtype):
        return None if mode != "affine" or scale_dtype == "float32" else scale_dtype

    def dequantize(self, mode, bits, group_size, scale_dtype, packed, scales, biases, k,
                   out_dtype, global_scale=None):
        out = qmv.dequantize(np.ascontiguousarray(packed), np.ascontiguousarray(scales),
                             None if biases is None else np.ascontiguousarray(biases),
                             mode=mode, bits=bits, group_size=group_size,
                             global_scale=global_scale, dtype=out_dtype,
                             scale_dtype=self._sdt(mode, scale_dtype), num_threads=self.threads)
        assert out.shape[1] == k
        return _storage(out, out_dtype)

    def qmv(self, mode, bits, group_size, scale_dtype, packed, scales, biases, k, x, x_dtype,
            y_dtype, global_scale=None, order=None):
        """y [m, rows] = x [m, k] . W^T with qmv_qmv, or as order `order` (a name) computes it."""
        x = np.ascontiguousarray(x)
        assert x.shape[1] == k
        y = qmv.matvec(x, np.ascontiguousarray(packed), np.ascontiguousarray(scales),
                       None if biases is None else np.ascontiguousarray(biases), mode=mode,
                       bits=bits, group_size=group_size, global_scale=global_scale,
                       dtype=y_dtype, x_dtype=None if x_dtype == "float32" else x_dtype,
                       scale_dtype=self._sdt(mode, scale_dtype), order=order,
                       num_threads=self.threads)
        return _storage(y, y_dtype)

    # ---- accumulation orders ----
    def orders(self):
        """[(name, emulates, confirmation, confirmed)] of every order the library knows."""
        return [(o.name, o.emulates, o.confirmation, int(o.confirmed)) for o in qmv.orders()]

    def order_index(self, name):
        for o in qmv.orders():
            if o.name == name:
                return o.index
        raise QmvError("qmv_order_find", 1, f"unknown order {name!r}")

    def qmv_order(self, order, mode, bits, group_size, scale_dtype, packed, scales, biases, k,
                  x, x_dtype, y_dtype, global_scale=None):
        """y [m, rows] = x [m, k] . W^T as order `order` (a name or an index) computes it."""
        name = order if isinstance(order, str) else qmv.orders()[order].name
        return self.qmv(mode, bits, group_size, scale_dtype, packed, scales, biases, k, x,
                        x_dtype, y_dtype, global_scale, order=name)
