"""Tests of the qmv Python package against MLX, the C library and the qmv command.

Bytes of quantize / dequantize equal mx.quantize / mx.dequantize (random and edge data, every
mode and float type, inputs as numpy arrays and as MLX arrays through DLPack); matvec equals
the C library's scalar reference and the `qmv matvec` command bit for bit; errors are the
documented exception types.
"""
import ctypes
import json
import os
import struct
import subprocess

import numpy as np
import pytest

import qmv
from qmv import _arrays, _capi

FORMATS = [("affine", 1, 64), ("affine", 2, 32), ("affine", 3, 64), ("affine", 4, 64),
           ("affine", 5, 32), ("affine", 6, 128), ("affine", 8, 64), ("mxfp4", 4, 32), ("nvfp4", 4, 16),
           ("mxfp8", 8, 32)]
FLOATS = ("float32", "float16", "bfloat16")


def to_bf16_bits(a):
    """float32 -> bfloat16 bit patterns (round to nearest even; inputs are finite)."""
    u = np.ascontiguousarray(a, np.float32).view(np.uint32).astype(np.uint64)
    return ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16)


def bf16_bits_to_f32(b):
    return (b.astype(np.uint32) << 16).view(np.float32)


def host(a, dtype_name):
    """numpy input of dtype_name: float32 / float16 arrays, bfloat16 as uint16 bits."""
    if dtype_name == "float32":
        return np.ascontiguousarray(a, np.float32)
    if dtype_name == "float16":
        return np.ascontiguousarray(a, np.float16)
    return to_bf16_bits(a)


def bits(a):
    """Raw bytes of a result (numpy array or MLX array) for bit-exact comparisons."""
    if not isinstance(a, np.ndarray):
        import mlx.core as mx
        if a.dtype == mx.bfloat16:
            a = a.view(mx.uint16)
        a = np.array(a)
    return np.ascontiguousarray(a).tobytes()


def edge_matrix(rows, k, rng):
    """Groups that stress rounding: zeros, constants, negative zero, huge ranges, tiny values,
    exact halves and values at the top of float16's range."""
    w = rng.standard_normal((rows, k)).astype(np.float32)
    w[0] = 0.0
    w[1] = -0.0
    w[2] = 1.5
    w[3, ::2] = 60000.0
    w[3, 1::2] = -60000.0
    w[4] = rng.standard_normal(k) * 1e-6
    w[5] = np.linspace(-6.0, 6.0, k)
    w[6, :] = 0.25
    w[6, ::7] = -3.0
    w[7] = np.round(rng.standard_normal(k) * 4) / 2
    return w


def wdata(kind, rows, k, rng):
    return edge_matrix(rows, k, rng) if kind == "edge" else rng.standard_normal((rows, k)).astype(np.float32) * 3


def mlx_float(mx, a, dtype_name):
    return mx.array(np.ascontiguousarray(a, np.float32)).astype(getattr(mx, dtype_name))


# ---- MLX: quantize and dequantize bytes ----

@pytest.mark.parametrize("mode,nbits,gs", FORMATS)
@pytest.mark.parametrize("dt", FLOATS)
@pytest.mark.parametrize("kind", ["random", "edge"])
def test_quantize_equals_mlx(mlx, rng, mode, nbits, gs, dt, kind):
    mx = mlx
    w = wdata(kind, 24, 256, rng)
    wm = mlx_float(mx, w, dt)
    ref = mx.quantize(wm, group_size=gs, bits=nbits, mode=mode)
    mx.eval(ref)
    # from numpy (bfloat16 as uint16 bits with w_dtype) and from the MLX array via DLPack
    w_np = host(np.array(wm.astype(mx.float32)), dt)
    got_np = qmv.quantize(w_np, mode=mode, bits=nbits, group_size=gs,
                          w_dtype="bfloat16" if dt == "bfloat16" else None)
    got_dl = qmv.quantize(wm, mode=mode, bits=nbits, group_size=gs)
    assert len(got_np) == len(ref) == len(got_dl) == (3 if mode == "affine" else 2)
    for a, b, c in zip(ref, got_np, got_dl):
        assert bits(a) == bits(b), f"{mode}{nbits} {dt}: numpy input differs from mx.quantize"
        assert bits(a) == bits(c), f"{mode}{nbits} {dt}: DLPack input differs from mx.quantize"
        assert tuple(a.shape) == b.shape == c.shape


@pytest.mark.parametrize("mode,nbits,gs", FORMATS)
@pytest.mark.parametrize("dt", FLOATS)
def test_dequantize_equals_mlx(mlx, rng, mode, nbits, gs, dt):
    mx = mlx
    wm = mlx_float(mx, wdata("random", 16, 256, rng), dt)
    q = mx.quantize(wm, group_size=gs, bits=nbits, mode=mode)
    for out_dt in (None,) + FLOATS:
        kw = {} if out_dt is None else {"dtype": getattr(mx, out_dt)}
        ref = mx.dequantize(*q, group_size=gs, bits=nbits, mode=mode, **kw)
        got = qmv.dequantize(*q, mode=mode, bits=nbits, group_size=gs, dtype=out_dt)
        assert str(ref.dtype).rsplit(".", 1)[-1] in (str(got.dtype), "bfloat16")
        assert bits(ref) == bits(got), f"{mode}{nbits} {dt} -> {out_dt}"


def test_nvfp4_global_scale_equals_mlx(mlx, rng):
    mx = mlx
    wm = mlx_float(mx, wdata("random", 16, 128, rng), "bfloat16")
    g = mx.array(5.0, dtype=mx.float32)
    ref = mx.quantize(wm, mode="nvfp4", global_scale=g)
    got = qmv.quantize(wm, mode="nvfp4", global_scale=g)
    assert all(bits(a) == bits(b) for a, b in zip(ref, got))
    dref = mx.dequantize(*ref, mode="nvfp4", global_scale=g, dtype=mx.float32)
    dgot = qmv.dequantize(*got, mode="nvfp4", global_scale=g, dtype="float32")
    assert bits(dref) == bits(dgot)


# ---- matvec: the C library's reference, orders, DLPack inputs ----

@pytest.mark.parametrize("mode,nbits,gs", FORMATS)
@pytest.mark.parametrize("dt", FLOATS)
def test_matvec_equals_reference(rng, mode, nbits, gs, dt):
    w = host(rng.standard_normal((40, 512)), dt)
    wdt = "bfloat16" if dt == "bfloat16" else None
    q = qmv.quantize(w, mode=mode, bits=nbits, group_size=gs, w_dtype=wdt)
    biases = q[2] if mode == "affine" else None
    x = host(rng.standard_normal((3, 512)), dt)
    kw = dict(mode=mode, bits=nbits, group_size=gs, x_dtype=wdt, scale_dtype=wdt)
    y = qmv.matvec(x, q[0], q[1], biases, **kw)
    assert y.shape == (3, 40)
    ref = qmv.matvec(x, q[0], q[1], biases, order="qmv-v1", **kw)  # qmv_qmv_reference
    assert bits(y) == bits(ref)
    for threads in (1, 2):
        assert bits(qmv.matvec(x, q[0], q[1], biases, num_threads=threads, **kw)) == bits(y)
    y1 = qmv.matvec(x[1], q[0], q[1], biases, **kw)  # one vector: y of shape (n,)
    assert y1.shape == (40,) and bits(y1) == bits(y[1])
    v = qmv.verify(y, x, q[0], q[1], biases, y_dtype=dt if dt == "bfloat16" else None, **kw)
    assert v.ok and v.mismatches == 0 and v.first is None


def test_verify_finds_a_flipped_bit(rng):
    w = rng.standard_normal((32, 256)).astype(np.float32)
    x = rng.standard_normal(256).astype(np.float32)
    q = qmv.quantize(w, mode="mxfp4")
    y = qmv.matvec(x, *q, mode="mxfp4")
    bad = y.copy()
    bad.view(np.uint32)[7] ^= 1
    v = qmv.verify(bad, x, *q, mode="mxfp4")
    assert not v.ok and v.mismatches == 1 and v.first == (7,)
    assert bits(v.expected) == bits(y)


def test_matvec_mlx_arrays_via_dlpack(mlx, rng):
    """Every input an MLX array (bfloat16 included), zero-copy through DLPack."""
    mx = mlx
    wm = mlx_float(mx, rng.standard_normal((64, 256)), "bfloat16")
    xm = mlx_float(mx, rng.standard_normal((2, 256)), "bfloat16")
    q = mx.quantize(wm, group_size=64, bits=4)
    mx.eval(q, xm)
    y = qmv.matvec(xm, *q, mode="affine", bits=4, group_size=64)
    x_np = np.array(xm.view(mx.uint16))
    q_np = [np.array(a.view(mx.uint16)) if a.dtype == mx.bfloat16 else np.array(a) for a in q]
    y_np = qmv.matvec(x_np, *q_np, mode="affine", bits=4, group_size=64, x_dtype="bfloat16",
                      scale_dtype="bfloat16")
    assert bits(y) == bits(y_np)
    assert qmv.verify(mx.array(y.view(np.uint16)).view(mx.bfloat16), xm, *q, mode="affine",
                      bits=4, group_size=64).ok


class DLPackOnly:
    """A numpy array seen only through the DLPack protocol (a generic producer)."""

    def __init__(self, a):
        self.a = a

    def __dlpack__(self, stream=None):
        return self.a.__dlpack__()

    def __dlpack_device__(self):
        return self.a.__dlpack_device__()


def test_numpy_dlpack_producer_and_padded_rows(rng):
    w = rng.standard_normal((48, 256)).astype(np.float32)
    x = rng.standard_normal((4, 256)).astype(np.float32)
    q = qmv.quantize(w, mode="affine", bits=4, group_size=64)
    y = qmv.matvec(x, *q, mode="affine")
    assert bits(qmv.matvec(DLPackOnly(x), *[DLPackOnly(a) for a in q], mode="affine")) == bits(y)
    # Padded rows are used in place (row strides), through numpy and through DLPack.
    wide = np.zeros((48, 300), np.float32)
    wide[:, :256] = w
    qp = qmv.quantize(wide[:, :256], mode="affine", bits=4, group_size=64)
    assert all(bits(a) == bits(b) for a, b in zip(q, qp))
    xw = np.zeros((4, 272), np.float32)
    xw[:, :256] = x
    assert bits(qmv.matvec(xw[:, :256], *q, mode="affine")) == bits(y)
    assert bits(qmv.matvec(DLPackOnly(xw[:, :256]), *q, mode="affine")) == bits(y)
    pw = np.zeros((48, q[0].shape[1] + 5), np.uint32)
    pw[:, :q[0].shape[1]] = q[0]
    assert bits(qmv.matvec(x, pw[:, :q[0].shape[1]], q[1], q[2], mode="affine")) == bits(y)


def test_torch_cpu_tensors(rng):
    torch = pytest.importorskip("torch", reason="SKIPPED torch comparison: torch not installed")
    w = rng.standard_normal((32, 128)).astype(np.float32)
    x = rng.standard_normal((2, 128)).astype(np.float32)
    q = qmv.quantize(w, mode="mxfp8")
    y = qmv.matvec(x, *q, mode="mxfp8")
    tq = qmv.quantize(torch.from_numpy(w), mode="mxfp8")
    assert all(bits(a) == bits(b) for a, b in zip(q, tq))
    assert bits(qmv.matvec(torch.from_numpy(x), *[torch.from_numpy(a) for a in q],
                           mode="mxfp8")) == bits(y)
    wb = torch.from_numpy(w).to(torch.bfloat16)
    qb = qmv.quantize(wb, mode="affine")
    qn = qmv.quantize(wb.view(torch.int16).numpy().view(np.uint16), mode="affine",
                      w_dtype="bfloat16")
    assert all(bits(a) == bits(b) for a, b in zip(qb, qn))


# ---- the qmv command ----

def read_safetensors(path):
    raw = open(path, "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    hdr = json.loads(raw[8:8 + n])
    body = raw[8 + n:]
    return {name: body[v["data_offsets"][0]:v["data_offsets"][1]]
            for name, v in hdr.items() if name != "__metadata__"}


@pytest.mark.parametrize("mode,nbits,gs", [("affine", 4, 64), ("affine", 3, 32),
                                           ("mxfp4", 4, 32), ("nvfp4", 4, 16),
                                           ("mxfp8", 8, 32)])
@pytest.mark.parametrize("dt", ["float32", "float16"])
def test_cli_equals_package(qmv_tool, tmp_path, rng, mode, nbits, gs, dt):
    w = host(rng.standard_normal((40, 256)), dt)
    x = host(rng.standard_normal((3, 256)), dt)
    np.save(tmp_path / "w.npy", w)
    np.save(tmp_path / "x.npy", x)
    subprocess.run([qmv_tool, "quantize", "--mode", mode, "--bits", str(nbits), "--group-size",
                    str(gs), "--name", "w", "--threads", "2", str(tmp_path / "w.npy"),
                    str(tmp_path / "q.safetensors")], check=True, capture_output=True)
    subprocess.run([qmv_tool, "matvec", "--weights", str(tmp_path / "q.safetensors"), "--x",
                    str(tmp_path / "x.npy"), "--out", str(tmp_path / "y.npy")], check=True,
                   capture_output=True)
    q = qmv.quantize(w, mode=mode, bits=nbits, group_size=gs)
    files = read_safetensors(tmp_path / "q.safetensors")
    names = ["w.weight", "w.scales", "w.biases"][:len(q)]
    assert [files[n] for n in names] == [bits(a) for a in q]
    y = qmv.matvec(x, *q, mode=mode, bits=nbits, group_size=gs)
    assert bits(np.load(tmp_path / "y.npy")) == bits(y)


# ---- errors, versions, orders ----

def test_errors():
    w = np.ones((4, 64), np.float32)
    with pytest.raises(TypeError, match="float64"):
        qmv.quantize(np.ones((4, 64)), mode="affine")
    with pytest.raises(TypeError, match="w_dtype='bfloat16'"):
        qmv.quantize(np.ones((4, 64), np.uint16))
    with pytest.raises(TypeError, match="numpy array or an object with __dlpack__"):
        qmv.quantize([[1.0] * 64])
    with pytest.raises(ValueError, match="matrix"):
        qmv.quantize(np.ones(64, np.float32))
    with pytest.raises(ValueError, match="contiguous"):
        qmv.quantize(np.ones((64, 64), np.float32).T)
    with pytest.raises(ValueError, match="contiguous rows"):
        qmv.quantize(np.ones((4, 128), np.float32)[:, ::2])
    with pytest.raises(ValueError, match="unknown mode"):
        qmv.quantize(w, mode="int4")
    with pytest.raises(ValueError, match="unknown profile"):
        qmv.quantize(w, profile="mlx-metal")
    with pytest.raises(qmv.QmvError) as e:
        qmv.quantize(w, bits=7)
    assert e.value.status == 2 and e.value.status_name == "UNSUPPORTED" and e.value.message
    bad = w.copy()
    bad[1, 3] = np.nan
    with pytest.raises(qmv.QmvError) as e:
        qmv.quantize(bad, mode="mxfp4")
    assert e.value.status == _capi.STATUS_NON_FINITE and "qmv_quantize" in str(e.value)
    q = qmv.quantize(w, mode="affine")
    with pytest.raises(ValueError, match="needs biases"):
        qmv.matvec(np.ones(64, np.float32), q[0], q[1], mode="affine")
    with pytest.raises(ValueError, match="k = 64"):
        qmv.matvec(np.ones(32, np.float32), *q, mode="affine")
    with pytest.raises(ValueError, match="scales must be"):
        qmv.matvec(np.ones(64, np.float32), q[0], q[1][:2], q[2][:2], mode="affine")
    with pytest.raises(TypeError, match="uint32"):
        qmv.matvec(np.ones(64, np.float32), q[0].astype(np.float32), q[1], q[2])
    with pytest.raises(ValueError, match="global_scale is for mode 'nvfp4'"):
        qmv.quantize(w, mode="mxfp4", global_scale=2.0)


class FakeDevice:
    def __init__(self, device_type):
        self.device_type = device_type

    def __dlpack_device__(self):
        return (self.device_type, 0)

    def __dlpack__(self, stream=None):
        raise AssertionError("a device array must be refused before it is exported")


def test_device_arrays_refused():
    with pytest.raises(ValueError, match="CUDA device"):
        qmv.quantize(FakeDevice(2))
    with pytest.raises(ValueError, match="Metal device"):
        qmv.matvec(np.zeros(64, np.float32), FakeDevice(8), np.zeros((1, 2), np.uint8),
                   mode="mxfp4")


def test_versions_and_orders():
    header = open(os.path.join(os.path.dirname(__file__), "..", "..", "include", "qmv.h")).read()
    assert f'#define QMV_VERSION_STRING "{qmv.version()}"' in header
    assert f"#define QMV_ORDER_VERSION {qmv.order_version()}" in header
    orders = qmv.orders()
    assert orders[0].index == 0 and orders[0].name == "qmv-v1" and orders[0].confirmed
    assert len({o.name for o in orders}) == len(orders)
    with pytest.raises(qmv.QmvError, match="qmv_order_find"):
        qmv.matvec(np.ones(32, np.float32), np.zeros((1, 4), np.uint32),
                   np.zeros((1, 1), np.uint8), mode="mxfp4", order="no-such-order")


def test_gil_released_in_c_calls():
    # ctypes.CDLL (not PyDLL) drops the GIL around every foreign call.
    lib = qmv._lib()
    assert type(lib.lib) is ctypes.CDLL
    assert lib.lib._func_flags_ & ctypes._FUNCFLAG_PYTHONAPI == 0


def test_threads_get_their_own_results_and_errors(rng):
    """Calls from several threads at once (the GIL is released in C): each gets its own
    result and, on failure, its own message (qmv_last_error is per thread)."""
    import threading
    w = rng.standard_normal((256, 1024)).astype(np.float32)
    x = rng.standard_normal((4, 1024)).astype(np.float32)
    q = qmv.quantize(w, mode="nvfp4")
    want = bits(qmv.matvec(x, *q, mode="nvfp4"))
    bad = np.ones((4, 100), np.float32)
    results = []

    def work(i):
        for _ in range(20):
            if i % 2:
                results.append(bits(qmv.matvec(x, *q, mode="nvfp4")) == want)
            else:
                try:
                    qmv.quantize(bad, mode="mxfp4")
                    results.append(False)
                except qmv.QmvError as e:
                    results.append("k = 100" in e.message)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 80 and all(results)


def test_bfloat16_results_follow_ml_dtypes(rng):
    w = to_bf16_bits(rng.standard_normal((4, 64)))
    _, scales, _ = qmv.quantize(w, w_dtype="bfloat16")
    want = _arrays.BFLOAT16 if _arrays.BFLOAT16 is not None else np.dtype(np.uint16)
    assert scales.dtype == want


def test_verify_bound_and_stat(rng):
    """qmv_verify's bound modes through the package: numpy's float32 matmul of the dequantized
    weights (another summation order) passes --bound and --stat; a y moved by one weight code
    at the largest |x| fails --stat; a y of zeros fails both."""
    k = 4096
    w = rng.standard_normal((64, k)).astype(np.float32)
    x = rng.standard_normal((2, k)).astype(np.float32)
    q = qmv.quantize(w, mode="mxfp4")
    wd = qmv.dequantize(*q, mode="mxfp4", dtype="float32")
    y = (x @ wd.T).astype(np.float32)  # float32 accumulation in numpy's own order
    for check in ("bound", "stat"):
        v = qmv.verify(y, x, *q, mode="mxfp4", check=check, allow_weak=check == "bound")
        assert v.mismatches == 0 and v.first is None, (check, v.summary)
        assert v.summary["total"] == 2 * 64 and v.summary["fail"] == 0
        assert v.ok, (check, v.summary)
    assert qmv.verify(y, x, *q, mode="mxfp4", check="stat").summary["max_abs_error"] >= 0.0
    bad = np.zeros_like(y)
    for check in ("bound", "stat"):
        v = qmv.verify(bad, x, *q, mode="mxfp4", check=check, allow_weak=True)
        assert not v.ok and v.mismatches > 0 and v.first is not None
    # one E2M1 code of row 5 moved one step (magnitude code c -> c+1) at the largest |x[0]|
    i = int(np.argmax(np.abs(x[0])))
    packed = q[0].copy()
    word, nib = divmod(i, 8)
    code = (int(packed[5, word]) >> (4 * nib)) & 0xF
    new = (code & 8) | min((code & 7) + 1, 7) if (code & 7) < 7 else (code & 8) | 6
    packed[5, word] = (int(packed[5, word]) & ~(0xF << (4 * nib)) & 0xFFFFFFFF) | (new << (4 * nib))
    wd2 = qmv.dequantize(packed, q[1], mode="mxfp4", dtype="float32")
    y2 = (x @ wd2.T).astype(np.float32)
    v = qmv.verify(y2, x, *q, mode="mxfp4", check="stat")
    assert not v.ok and v.first == (0, 5), v.summary
    with pytest.raises(ValueError):
        qmv.verify(y, x, *q, mode="mxfp4", check="nearly")
