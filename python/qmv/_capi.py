"""qmv._capi - the ctypes declarations of qmv's public C API (include/qmv.h).

The one place where the C structures and function signatures are spelled in Python: the
package (qmv/__init__.py) and the MLX differential test (tests/mlx/qmv_ctypes.py) both use it.
Field order and types must match include/qmv.h exactly: a mismatch shows in tests/python,
which compares every call's result with MLX, the C reference and the qmv command.
"""
import ctypes
import os

STATUS_OK = 0
STATUS_NON_FINITE = 9

# Values of qmv_status, qmv_dtype, qmv_mode and qmv_profile; names as include/qmv.h spells them.
STATUS_NAMES = {
    0: "OK", 1: "INVALID_ARGUMENT", 2: "UNSUPPORTED", 3: "BUFFER_TOO_SMALL",
    4: "OUT_OF_MEMORY", 5: "MALFORMED_INPUT", 6: "IO_ERROR", 7: "NO_DEVICE",
    8: "DEVICE_ERROR", 9: "NON_FINITE", 10: "OVERFLOW",
}
DTYPES = {"float32": 0, "float16": 1, "bfloat16": 2}
MODES = {"affine": 0, "mxfp4": 1, "nvfp4": 2, "mxfp8": 3}
PROFILES = {"mlx-cpu": 0, "mlx-cuda": 1, "ocp": 2}


class QmvError(RuntimeError):
    """A qmv C call failed: .status (int qmv_status), .status_name ("INVALID_ARGUMENT", ...),
    .message (qmv_last_error()), .function (the C function)."""

    def __init__(self, function, status, message):
        self.function = function
        self.status = status
        self.status_name = STATUS_NAMES.get(status, "UNKNOWN")
        self.message = message
        super().__init__(f"{function}: QMV_STATUS_{self.status_name} ({status}): {message}")


class Format(ctypes.Structure):
    _fields_ = [("mode", ctypes.c_int), ("bits", ctypes.c_int), ("group_size", ctypes.c_int)]


class Layout(ctypes.Structure):
    _fields_ = [
        ("words_per_row", ctypes.c_int64),
        ("groups_per_row", ctypes.c_int64),
        ("packed_bytes", ctypes.c_size_t),
        ("scales_bytes", ctypes.c_size_t),
        ("biases_bytes", ctypes.c_size_t),
    ]


class Exec(ctypes.Structure):
    _fields_ = [("struct_size", ctypes.c_size_t), ("num_threads", ctypes.c_int),
                ("cpu_tiers", ctypes.c_uint)]


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


class QuantOut(ctypes.Structure):
    _fields_ = [
        ("packed", ctypes.c_void_p),
        ("packed_bytes", ctypes.c_size_t),
        ("scales", ctypes.c_void_p),
        ("scales_bytes", ctypes.c_size_t),
        ("biases", ctypes.c_void_p),
        ("biases_bytes", ctypes.c_size_t),
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


class OrderInfo(ctypes.Structure):
    _fields_ = [
        ("name", ctypes.c_char_p),
        ("emulates", ctypes.c_char_p),
        ("confirmation", ctypes.c_char_p),
        ("confirmed", ctypes.c_int),
    ]


class VerifyOptions(ctypes.Structure):
    _fields_ = [("mode", ctypes.c_int), ("order", ctypes.c_int), ("accum", ctypes.c_int),
                ("p", ctypes.c_double)]


class VerifySummary(ctypes.Structure):
    _fields_ = [
        ("total", ctypes.c_int64),
        ("count", ctypes.c_int64 * 4),  # QMV_VERIFY_CLASS_COUNT: pass, fail, unchecked, weak
        ("first_fail", ctypes.c_int64),
        ("worst", ctypes.c_int64),
        ("worst_y", ctypes.c_double),
        ("worst_expected", ctypes.c_double),
        ("worst_error", ctypes.c_double),
        ("worst_bound", ctypes.c_double),
        ("worst_ratio", ctypes.c_double),
        ("detect_median", ctypes.c_double),
        ("detect_worst", ctypes.c_double),
        ("max_abs_error", ctypes.c_double),
        ("max_rel_error", ctypes.c_double),
        ("nmse", ctypes.c_double),
        ("lambda_", ctypes.c_double),
    ]


VERIFY_MODES = {"exact": 0, "bound": 1, "stat": 2}

_P = ctypes.POINTER
_I64 = ctypes.c_int64
_SIGNATURES = {
    "qmv_version_string": (ctypes.c_char_p, []),
    "qmv_version_number": (ctypes.c_uint, []),
    "qmv_order_version": (ctypes.c_uint, []),
    "qmv_status_string": (ctypes.c_char_p, [ctypes.c_int]),
    "qmv_last_error": (ctypes.c_char_p, []),
    "qmv_format_default": (ctypes.c_int, [ctypes.c_int, _P(Format)]),
    "qmv_format_validate": (ctypes.c_int, [_P(Format)]),
    "qmv_layout_query": (ctypes.c_int, [_P(Format), ctypes.c_int, _I64, _I64, _P(Layout)]),
    "qmv_qmatrix_dense": (ctypes.c_int, [_P(Format), ctypes.c_int, _I64, _I64, ctypes.c_void_p,
                                         ctypes.c_void_p, ctypes.c_void_p, _P(QMatrix)]),
    "qmv_quantize": (ctypes.c_int, [_P(Format), ctypes.c_int, _P(ctypes.c_float), ctypes.c_int,
                                    ctypes.c_void_p, ctypes.c_size_t, _I64, _I64, _I64,
                                    _P(QuantOut), _P(Exec)]),
    "qmv_dequantize": (ctypes.c_int, [_P(QMatrix), ctypes.c_int, ctypes.c_void_p,
                                      ctypes.c_size_t, _I64, _P(Exec)]),
    "qmv_qmv": (ctypes.c_int, [_P(QMatrix), _P(Vectors), _P(Exec)]),
    "qmv_qmv_reference": (ctypes.c_int, [_P(QMatrix), _P(Vectors)]),
    "qmv_order_count": (ctypes.c_int, []),
    "qmv_order_get": (ctypes.c_int, [ctypes.c_int, _P(OrderInfo)]),
    "qmv_order_find": (ctypes.c_int, [ctypes.c_char_p, _P(ctypes.c_int)]),
    "qmv_qmv_order": (ctypes.c_int, [ctypes.c_int, _P(QMatrix), _P(Vectors)]),
    "qmv_verify": (ctypes.c_int, [_P(QMatrix), _P(Vectors), _P(VerifyOptions), ctypes.c_void_p,
                                  ctypes.c_size_t, _P(VerifySummary)]),
}


class Library:
    """A loaded libqmv with every function of _SIGNATURES declared (attributes of .lib).

    ctypes releases the GIL around each foreign call, so long calls (quantize, dequantize,
    qmv) let other Python threads run."""

    def __init__(self, path):
        self.path = os.path.abspath(path)
        self.lib = ctypes.CDLL(self.path)
        for name, (res, args) in _SIGNATURES.items():
            f = getattr(self.lib, name)
            f.restype = res
            f.argtypes = args

    def check(self, status, function):
        """Raises QmvError for a status other than QMV_STATUS_OK (message from this thread's
        qmv_last_error(), read right after the call on the same thread)."""
        if status != STATUS_OK:
            msg = self.lib.qmv_last_error().decode(errors="replace")
            raise QmvError(function, status, msg)

    def exec(self, num_threads=0, cpu_tiers=0):
        return Exec(ctypes.sizeof(Exec), num_threads, cpu_tiers)

    def format(self, mode, bits=None, group_size=None):
        """A validated Format; bits / group_size None take MLX's defaults for the mode."""
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}: expected one of {', '.join(MODES)}")
        fmt = Format()
        self.check(self.lib.qmv_format_default(MODES[mode], ctypes.byref(fmt)),
                   "qmv_format_default")
        if bits is not None:
            fmt.bits = int(bits)
        if group_size is not None:
            fmt.group_size = int(group_size)
        self.check(self.lib.qmv_format_validate(ctypes.byref(fmt)), "qmv_format_validate")
        return fmt

    def layout(self, fmt, scale_dtype, rows, k):
        lay = Layout()
        self.check(self.lib.qmv_layout_query(ctypes.byref(fmt), DTYPES[scale_dtype], rows, k,
                                             ctypes.byref(lay)), "qmv_layout_query")
        return lay


def package_library_path():
    """The shared library installed beside this module by `pip install .`; $QMV_LIBRARY, when
    set, names another one (a build tree's libqmv.so, for example)."""
    env = os.environ.get("QMV_LIBRARY")
    if env:
        return env
    here = os.path.dirname(os.path.abspath(__file__))
    names = sorted(n for n in os.listdir(here)
                   if n.startswith("libqmv.so") or n in ("libqmv.dylib", "qmv.dll"))
    if not names:
        raise ImportError(f"qmv: no shared libqmv in {here}; install the package with "
                          "`pip install .` from the qmv source tree, or set QMV_LIBRARY to a "
                          "shared libqmv")
    return os.path.join(here, names[0])
