"""qmv._arrays - host views of the caller's arrays, without copying.

An input is a numpy array or any object with __dlpack__ (PyTorch, MLX, CuPy, JAX, ...). Its
memory is passed to the C library as it is: a view records the data pointer, the shape, the
row stride and the element type. The C API takes a row stride for every matrix, so a 2-D array
whose rows are padded is used in place; anything else that is not dense (a transposed or
column-strided view, a negative stride) is refused with ValueError rather than copied behind
the caller's back.

DLPack tensors are read through the legacy "dltensor" capsule: the capsule is kept alive (and
not renamed) while the C call runs, so the producer's own capsule destructor frees the tensor
afterwards, as DLPack specifies for a capsule that was not consumed.
"""
import ctypes

import numpy as np

try:  # bfloat16 for numpy, optional
    import ml_dtypes as _ml_dtypes

    BFLOAT16 = np.dtype(_ml_dtypes.bfloat16)
except ImportError:  # pragma: no cover - depends on the environment
    BFLOAT16 = None

# qmv's element types, by the name MLX and qmv use, and numpy's storage type of each.
FLOAT_NAMES = ("float32", "float16", "bfloat16")
ITEMSIZE = {"float32": 4, "float16": 2, "bfloat16": 2, "uint32": 4, "uint16": 2, "uint8": 1}


class _DLDevice(ctypes.Structure):
    _fields_ = [("device_type", ctypes.c_int), ("device_id", ctypes.c_int)]


class _DLDataType(ctypes.Structure):
    _fields_ = [("code", ctypes.c_uint8), ("bits", ctypes.c_uint8), ("lanes", ctypes.c_uint16)]


class _DLTensor(ctypes.Structure):
    _fields_ = [
        ("data", ctypes.c_void_p),
        ("device", _DLDevice),
        ("ndim", ctypes.c_int),
        ("dtype", _DLDataType),
        ("shape", ctypes.POINTER(ctypes.c_int64)),
        ("strides", ctypes.POINTER(ctypes.c_int64)),
        ("byte_offset", ctypes.c_uint64),
    ]


_kDLCPU, _kDLCUDA, _kDLCUDAHost = 1, 2, 3
_DEVICE_NAMES = {1: "CPU", 2: "CUDA", 3: "CUDA host", 4: "OpenCL", 7: "Vulkan", 8: "Metal",
                 9: "VPI", 10: "ROCm", 11: "ROCm host", 13: "CUDA managed", 14: "oneAPI"}
# (type code, bits) -> element type name. Codes: 0 int, 1 uint, 2 float, 4 bfloat.
_DL_TYPES = {(2, 32): "float32", (2, 16): "float16", (4, 16): "bfloat16", (1, 32): "uint32",
             (0, 32): "uint32", (1, 16): "uint16", (1, 8): "uint8"}

_capsule_get_pointer = ctypes.pythonapi.PyCapsule_GetPointer
_capsule_get_pointer.restype = ctypes.c_void_p
_capsule_get_pointer.argtypes = [ctypes.py_object, ctypes.c_char_p]


class View:
    """A read-only host view: ptr (int), shape (tuple), row_stride (elements between rows of a
    2-D view), elem (element type name), nbytes (bytes from ptr to the end of the last row)
    and keep (objects that must stay alive while ptr is used)."""

    __slots__ = ("ptr", "shape", "row_stride", "elem", "nbytes", "keep", "name")

    def __init__(self, name, ptr, shape, strides, elem, keep):
        self.name, self.ptr, self.shape, self.elem, self.keep = name, ptr, tuple(shape), elem, keep
        size = ITEMSIZE[elem]
        ndim = len(self.shape)
        if any(d < 0 for d in self.shape):
            raise ValueError(f"qmv: {name} has a negative dimension {self.shape}")
        # strides in elements, or None for a dense row-major array
        if strides is None:
            strides = [1] * ndim
            for i in range(ndim - 2, -1, -1):
                strides[i] = strides[i + 1] * self.shape[i + 1]
        strides = list(strides)
        if ndim == 0:
            raise ValueError(f"qmv: {name} must have 1 or 2 dimensions, got a scalar")
        # Dimensions of size 1 have no meaningful stride.
        if self.shape[-1] > 1 and strides[-1] != 1:
            raise ValueError(f"qmv: {name} must have contiguous rows (stride 1 along the last "
                             f"axis); got strides {tuple(strides)} in elements: pass a "
                             "C-contiguous array (numpy.ascontiguousarray)")
        if ndim == 2:
            rs = strides[0] if self.shape[0] > 1 else self.shape[1]
            if rs < self.shape[1]:
                raise ValueError(f"qmv: {name} has a row stride of {rs} elements, less than its "
                                 f"{self.shape[1]} columns (transposed or overlapping rows); "
                                 "pass a C-contiguous array (numpy.ascontiguousarray)")
            self.row_stride = rs
            rows = self.shape[0]
            self.nbytes = ((rows - 1) * rs + self.shape[1]) * size if rows > 0 else 0
        elif ndim == 1:
            self.row_stride = self.shape[0]
            self.nbytes = self.shape[0] * size
        else:
            raise ValueError(f"qmv: {name} must have 1 or 2 dimensions, got shape {self.shape}")


def _dtype_name(np_dtype):
    if np_dtype == np.float32:
        return "float32"
    if np_dtype == np.float16:
        return "float16"
    if BFLOAT16 is not None and np_dtype == BFLOAT16:
        return "bfloat16"
    if np_dtype == np.uint32 or np_dtype == np.int32:
        return "uint32"
    if np_dtype == np.uint16:
        return "uint16"
    if np_dtype == np.uint8:
        return "uint8"
    return None


def _from_numpy(name, a):
    elem = _dtype_name(a.dtype)
    if elem is None:
        raise TypeError(f"qmv: {name} has dtype {a.dtype}, which qmv cannot take")
    size = a.dtype.itemsize
    if any(s % size for s in a.strides) or any(s < 0 for s in a.strides):
        raise ValueError(f"qmv: {name} has strides {a.strides} bytes that are not a positive "
                         "multiple of its element size; pass numpy.ascontiguousarray(...)")
    strides = [s // size for s in a.strides]
    return View(name, a.ctypes.data, a.shape, strides, elem, a)


def _from_dlpack(name, obj):
    dev = None
    if hasattr(obj, "__dlpack_device__"):
        dev = tuple(int(v) for v in obj.__dlpack_device__())
        _check_device(name, dev)
    try:
        capsule = obj.__dlpack__()
    except (TypeError, BufferError, RuntimeError) as e:
        raise ValueError(f"qmv: {name} cannot be exported through DLPack: {e}") from e
    ptr = _capsule_get_pointer(capsule, b"dltensor")
    t = _DLTensor.from_address(ptr)  # DLManagedTensor starts with its DLTensor
    _check_device(name, (t.device.device_type, t.device.device_id))
    if t.dtype.lanes != 1 or (t.dtype.code, t.dtype.bits) not in _DL_TYPES:
        raise TypeError(f"qmv: {name} has a DLPack dtype (code {t.dtype.code}, {t.dtype.bits} "
                        f"bits, {t.dtype.lanes} lanes) that qmv cannot take")
    elem = _DL_TYPES[(t.dtype.code, t.dtype.bits)]
    shape = [t.shape[i] for i in range(t.ndim)]
    strides = [t.strides[i] for i in range(t.ndim)] if t.strides else None
    if strides is not None and any(s < 0 for s in strides):
        raise ValueError(f"qmv: {name} has negative strides {tuple(strides)}")
    data = (t.data or 0) + t.byte_offset
    return View(name, data, shape, strides, elem, (capsule, obj))


def _check_device(name, dev):
    if dev[0] in (_kDLCPU, _kDLCUDAHost):
        return
    where = _DEVICE_NAMES.get(dev[0], f"DLPack device type {dev[0]}")
    raise ValueError(f"qmv: {name} lives on a {where} device (id {dev[1]}); the Python binding "
                     "runs on host memory only: copy it to the CPU first (qmv's CUDA backend "
                     "is available from C, include/qmv_cuda.h)")


def view(name, obj):
    """A View of obj (numpy array or DLPack producer), zero-copy."""
    if isinstance(obj, np.ndarray):
        return _from_numpy(name, obj)
    if hasattr(obj, "__dlpack__"):
        return _from_dlpack(name, obj)
    raise TypeError(f"qmv: {name} must be a numpy array or an object with __dlpack__ "
                    f"(PyTorch, MLX, CuPy, ...); got {type(obj).__name__}")


def float_type(v, explicit, what):
    """The qmv float dtype name of View v: its own (float32, float16, bfloat16), or for a
    uint16 view the explicitly given one ("float16" or "bfloat16")."""
    if v.elem == "uint16":
        if explicit not in ("float16", "bfloat16"):
            raise TypeError(f"qmv: {v.name} holds uint16 bit patterns: say which type with "
                            f"{what}='bfloat16' or {what}='float16'")
        return explicit
    if v.elem not in FLOAT_NAMES:
        raise TypeError(f"qmv: {v.name} must be float32, float16 or bfloat16 (or uint16 bit "
                        f"patterns with {what}=...), got {v.elem}")
    if explicit is not None and explicit != v.elem:
        raise TypeError(f"qmv: {v.name} is {v.elem} but {what}={explicit!r} was given")
    return v.elem


def empty(shape, dtype_name):
    """A new numpy array for a result of qmv type dtype_name: float16 as numpy.float16,
    bfloat16 as ml_dtypes.bfloat16 when ml_dtypes is installed, else as uint16 bit patterns."""
    if dtype_name == "float32":
        return np.empty(shape, np.float32)
    if dtype_name == "float16":
        return np.empty(shape, np.float16)
    if dtype_name == "bfloat16":
        return np.empty(shape, BFLOAT16 if BFLOAT16 is not None else np.uint16)
    return np.empty(shape, np.dtype(dtype_name))
