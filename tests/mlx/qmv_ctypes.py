"""qmv_ctypes.py - a small ctypes binding to qmv's public API (include/qmv.h), for tests.

Only what tests/mlx/ needs: quantize, dequantize, qmv, the accumulation orders (qmv_order_*,
qmv_qmv_order), a few names and versions.
Arrays are numpy arrays; every call passes the buffer sizes in bytes as the C API requires,
checks the status and raises QmvError (with qmv_last_error()) on failure.

    lib = Qmv("/path/to/libqmv.so")      # a shared build of the library (BUILD_SHARED_LIBS=ON)
    packed, scales, biases = lib.quantize("affine", 4, 64, "float32", w)
    out = lib.dequantize("affine", 4, 64, "float32", packed, scales, biases, "float16")
    y = lib.qmv("affine", 4, 64, "float32", packed, scales, biases, x, "float32", "float32")

Dtypes are named as MLX names them ("float32", "float16", "bfloat16"); float16 and bfloat16
data travel as uint16 bit patterns (numpy has no bfloat16), float32 as float32.
"""
import ctypes
import os

import numpy as np

STATUS_OK = 0
STATUS_NON_FINITE = 9

DTYPES = {"float32": 0, "float16": 1, "bfloat16": 2}
MODES = {"affine": 0, "mxfp4": 1, "nvfp4": 2, "mxfp8": 3}
PROFILES = {"mlx-cpu": 0, "mlx-cuda": 1, "ocp": 2}
# numpy storage type of each dtype's elements
NP_STORAGE = {"float32": np.float32, "float16": np.uint16, "bfloat16": np.uint16}


class QmvError(RuntimeError):
    def __init__(self, what, status, message):
        super().__init__(f"{what}: status {status} ({message})")
        self.status = status
        self.message = message


class Format(ctypes.Structure):
    _fields_ = [("mode", ctypes.c_int), ("bits", ctypes.c_int), ("group_size", ctypes.c_int)]


class QuantOut(ctypes.Structure):
    _fields_ = [
        ("packed", ctypes.c_void_p),
        ("packed_bytes", ctypes.c_size_t),
        ("scales", ctypes.c_void_p),
        ("scales_bytes", ctypes.c_size_t),
        ("biases", ctypes.c_void_p),
        ("biases_bytes", ctypes.c_size_t),
    ]


class QMatrix(ctypes.Structure):
    _fields_ = [
        ("format", Format),
        ("scale_dtype", ctypes.c_int),
        ("rows", ctypes.c_int64),
        ("k", ctypes.c_int64),
        ("packed", ctypes.c_void_p),
        ("packed_bytes", ctypes.c_size_t),
        ("packed_row_stride", ctypes.c_int64),
        ("packed_batch_stride", ctypes.c_int64),
        ("scales", ctypes.c_void_p),
        ("scales_bytes", ctypes.c_size_t),
        ("biases", ctypes.c_void_p),
        ("biases_bytes", ctypes.c_size_t),
        ("scales_row_stride", ctypes.c_int64),
        ("scales_batch_stride", ctypes.c_int64),
        ("global_scale", ctypes.POINTER(ctypes.c_float)),
    ]


class Vectors(ctypes.Structure):
    _fields_ = [
        ("batch", ctypes.c_int64),
        ("m", ctypes.c_int64),
        ("x_dtype", ctypes.c_int),
        ("x", ctypes.c_void_p),
        ("x_bytes", ctypes.c_size_t),
        ("x_row_stride", ctypes.c_int64),
        ("x_batch_stride", ctypes.c_int64),
        ("y_dtype", ctypes.c_int),
        ("y", ctypes.c_void_p),
        ("y_bytes", ctypes.c_size_t),
        ("y_row_stride", ctypes.c_int64),
        ("y_batch_stride", ctypes.c_int64),
    ]


class Layout(ctypes.Structure):
    _fields_ = [
        ("words_per_row", ctypes.c_int64),
        ("groups_per_row", ctypes.c_int64),
        ("packed_bytes", ctypes.c_size_t),
        ("scales_bytes", ctypes.c_size_t),
        ("biases_bytes", ctypes.c_size_t),
    ]


class Exec(ctypes.Structure):
    _fields_ = [("struct_size", ctypes.c_size_t), ("num_threads", ctypes.c_int)]


class OrderInfo(ctypes.Structure):
    _fields_ = [("name", ctypes.c_char_p), ("emulates", ctypes.c_char_p),
                ("confirmation", ctypes.c_char_p), ("confirmed", ctypes.c_int)]


def _ptr(a):
    return ctypes.c_void_p(a.ctypes.data) if a is not None else None


def _contig(a, dtype):
    a = np.ascontiguousarray(a)
    if a.dtype != np.dtype(dtype):
        raise TypeError(f"expected {np.dtype(dtype)}, got {a.dtype}")
    return a


class Qmv:
    def __init__(self, path, num_threads=0):
        self.path = os.path.abspath(path)
        self.lib = lib = ctypes.CDLL(self.path)
        self.exec = Exec(ctypes.sizeof(Exec), num_threads)
        P = ctypes.POINTER
        sig = {
            "qmv_version_string": (ctypes.c_char_p, []),
            "qmv_version_number": (ctypes.c_uint, []),
            "qmv_order_version": (ctypes.c_uint, []),
            "qmv_status_string": (ctypes.c_char_p, [ctypes.c_int]),
            "qmv_last_error": (ctypes.c_char_p, []),
            "qmv_layout_query": (
                ctypes.c_int,
                [P(Format), ctypes.c_int, ctypes.c_int64, ctypes.c_int64, P(Layout)],
            ),
            "qmv_qmatrix_dense": (
                ctypes.c_int,
                [P(Format), ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_void_p,
                 ctypes.c_void_p, ctypes.c_void_p, P(QMatrix)],
            ),
            "qmv_quantize": (
                ctypes.c_int,
                [P(Format), ctypes.c_int, P(ctypes.c_float), ctypes.c_int, ctypes.c_void_p,
                 ctypes.c_size_t, ctypes.c_int64, ctypes.c_int64, ctypes.c_int64, P(QuantOut),
                 P(Exec)],
            ),
            "qmv_dequantize": (
                ctypes.c_int,
                [P(QMatrix), ctypes.c_int, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int64,
                 P(Exec)],
            ),
            "qmv_qmv": (ctypes.c_int, [P(QMatrix), P(Vectors), P(Exec)]),
            "qmv_order_count": (ctypes.c_int, []),
            "qmv_order_get": (ctypes.c_int, [ctypes.c_int, P(OrderInfo)]),
            "qmv_order_find": (ctypes.c_int, [ctypes.c_char_p, P(ctypes.c_int)]),
            "qmv_qmv_order": (ctypes.c_int, [ctypes.c_int, P(QMatrix), P(Vectors)]),
        }
        for name, (res, args) in sig.items():
            f = getattr(lib, name)
            f.restype = res
            f.argtypes = args

    # ---- helpers ----
    def version(self):
        return self.lib.qmv_version_string().decode()

    def order_version(self):
        return int(self.lib.qmv_order_version())

    def _check(self, st, what):
        if st != STATUS_OK:
            msg = self.lib.qmv_last_error().decode(errors="replace")
            raise QmvError(what, st, msg)

    @staticmethod
    def _fmt(mode, bits, group_size):
        return Format(MODES[mode], bits, group_size)

    def layout(self, mode, bits, group_size, scale_dtype, rows, k):
        lay = Layout()
        fmt = self._fmt(mode, bits, group_size)
        self._check(self.lib.qmv_layout_query(ctypes.byref(fmt), DTYPES[scale_dtype], rows, k,
                                              ctypes.byref(lay)), "qmv_layout_query")
        return lay

    # ---- quantize ----
    def quantize(self, mode, bits, group_size, w_dtype, w, global_scale=None,
                 profile="mlx-cpu"):
        """w: [rows, k] in NP_STORAGE[w_dtype]. Returns (packed uint32 [rows, words],
        scales [rows, groups] (uint8, or w's storage type for affine), biases or None)."""
        w = _contig(w, NP_STORAGE[w_dtype])
        rows, k = w.shape
        lay = self.layout(mode, bits, group_size, w_dtype, rows, k)
        packed = np.empty((rows, lay.words_per_row), np.uint32)
        if mode == "affine":
            scales = np.empty((rows, lay.groups_per_row), NP_STORAGE[w_dtype])
            biases = np.empty_like(scales)
        else:
            scales = np.empty((rows, lay.groups_per_row), np.uint8)
            biases = None
        out = QuantOut(_ptr(packed), packed.nbytes, _ptr(scales), scales.nbytes,
                       _ptr(biases), biases.nbytes if biases is not None else 0)
        fmt = self._fmt(mode, bits, group_size)
        g = ctypes.byref(ctypes.c_float(global_scale)) if global_scale is not None else None
        st = self.lib.qmv_quantize(ctypes.byref(fmt), PROFILES[profile], g, DTYPES[w_dtype],
                                   _ptr(w), w.nbytes, rows, k, k, ctypes.byref(out),
                                   ctypes.byref(self.exec))
        self._check(st, "qmv_quantize")
        return packed, scales, biases

    def quantize_status(self, mode, bits, group_size, w_dtype, w, global_scale=None):
        """The status of qmv_quantize (no exception), for error-path checks."""
        try:
            self.quantize(mode, bits, group_size, w_dtype, w, global_scale)
            return STATUS_OK
        except QmvError as e:
            return e.status

    # ---- quantized matrix ----
    def _qmatrix(self, mode, bits, group_size, scale_dtype, packed, scales, biases, k,
                 global_scale, keep):
        packed = _contig(packed, np.uint32)
        scales = np.ascontiguousarray(scales)
        biases = np.ascontiguousarray(biases) if biases is not None else None
        keep += [packed, scales, biases]
        rows = packed.shape[0]
        q = QMatrix()
        fmt = self._fmt(mode, bits, group_size)
        self._check(self.lib.qmv_qmatrix_dense(ctypes.byref(fmt), DTYPES[scale_dtype], rows, k,
                                               _ptr(packed), _ptr(scales), _ptr(biases),
                                               ctypes.byref(q)), "qmv_qmatrix_dense")
        if global_scale is not None:
            g = ctypes.c_float(global_scale)
            keep.append(g)
            q.global_scale = ctypes.pointer(g)
        return q, rows

    def dequantize(self, mode, bits, group_size, scale_dtype, packed, scales, biases, k,
                   out_dtype, global_scale=None):
        keep = []
        q, rows = self._qmatrix(mode, bits, group_size, scale_dtype, packed, scales, biases, k,
                                global_scale, keep)
        out = np.empty((rows, k), NP_STORAGE[out_dtype])
        st = self.lib.qmv_dequantize(ctypes.byref(q), DTYPES[out_dtype], _ptr(out), out.nbytes,
                                     k, ctypes.byref(self.exec))
        self._check(st, "qmv_dequantize")
        return out

    def qmv(self, mode, bits, group_size, scale_dtype, packed, scales, biases, k, x, x_dtype,
            y_dtype, global_scale=None):
        """y [m, rows] = x [m, k] . W^T with qmv_qmv."""
        keep = []
        q, rows = self._qmatrix(mode, bits, group_size, scale_dtype, packed, scales, biases, k,
                                global_scale, keep)
        x = _contig(x, NP_STORAGE[x_dtype])
        m = x.shape[0]
        assert x.shape[1] == k
        y = np.empty((m, rows), NP_STORAGE[y_dtype])
        v = Vectors(1, m, DTYPES[x_dtype], _ptr(x), x.nbytes, k, 0, DTYPES[y_dtype], _ptr(y),
                    y.nbytes, rows, 0)
        st = self.lib.qmv_qmv(ctypes.byref(q), ctypes.byref(v), ctypes.byref(self.exec))
        self._check(st, "qmv_qmv")
        return y

    # ---- accumulation orders ----
    def orders(self):
        """[(name, emulates, confirmation, confirmed)] of every order the library knows."""
        out = []
        for i in range(self.lib.qmv_order_count()):
            info = OrderInfo()
            self._check(self.lib.qmv_order_get(i, ctypes.byref(info)), "qmv_order_get")
            out.append((info.name.decode(), info.emulates.decode(), info.confirmation.decode(),
                        int(info.confirmed)))
        return out

    def order_index(self, name):
        idx = ctypes.c_int(-1)
        self._check(self.lib.qmv_order_find(name.encode(), ctypes.byref(idx)), "qmv_order_find")
        return idx.value

    def qmv_order(self, order, mode, bits, group_size, scale_dtype, packed, scales, biases, k,
                  x, x_dtype, y_dtype, global_scale=None):
        """y [m, rows] = x [m, k] . W^T as order `order` (a name or an index) computes it."""
        index = self.order_index(order) if isinstance(order, str) else order
        keep = []
        q, rows = self._qmatrix(mode, bits, group_size, scale_dtype, packed, scales, biases, k,
                                global_scale, keep)
        x = _contig(x, NP_STORAGE[x_dtype])
        m = x.shape[0]
        assert x.shape[1] == k
        y = np.empty((m, rows), NP_STORAGE[y_dtype])
        v = Vectors(1, m, DTYPES[x_dtype], _ptr(x), x.nbytes, k, 0, DTYPES[y_dtype], _ptr(y),
                    y.nbytes, rows, 0)
        st = self.lib.qmv_qmv_order(index, ctypes.byref(q), ctypes.byref(v))
        self._check(st, "qmv_qmv_order")
        return y
