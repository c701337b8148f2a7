#!/usr/bin/env python3
"""mlx_diff.py - differential test of qmv against MLX itself.

Drives qmv through its public C API (tests/mlx/qmv_ctypes.py, a ctypes binding to a shared
build of the library) and MLX's CPU build (`pip install 'mlx[cpu]' numpy`) on the same data:

  1. quantize: packed codes, scales and biases of qmv_quantize(profile mlx-cpu) equal to
     mx.quantize's, bit for bit, group by group;
  2. dequantize: qmv_dequantize equal to mx.dequantize bit for bit, for every output dtype,
     on the quantized data and (fp modes) on random code and scale bytes;
  3. qmv: qmv_qmv within a rigorous error bound of mx.quantized_matmul(transpose=True), and
     within qmv's own documented bound (docs/ORDER.md) of the exact product.

Cases: affine bits {2,3,4,5,6,8} x group {32,64,128}, mxfp4, nvfp4 without and with a global
scale, mxfp8; inputs float32, float16 and bfloat16; per group one of: normal, wide-range
normal, uniform, all-positive uniform, heavy-tailed (Student t, 1.5 dof), outlier, rounding
ties (E2M1 / E4M3 midpoints, nvfp4 E4M3-scale midpoints, affine half-integer codes), all-zero,
signed zeros, all-equal, all-negative, amax exactly at 2^e / M*2^e and one ulp either side,
tiny (across the subnormal boundary), subnormal only, huge (near the dtype's maximum).
Matrices have many rows (thousands) and K in {256, 512, 1024, 2048}. By default at least
1,100,000 quantized groups per mode (affine, mxfp4, nvfp4, nvfp4 with a global scale, mxfp8).

Run (from anywhere; MLX and numpy must be importable):

    python3 tests/mlx/mlx_diff.py                 # builds libqmv.so into a scratch dir
    python3 tests/mlx/mlx_diff.py --lib /path/to/libqmv.so
    python3 tests/mlx/mlx_diff.py --groups 100000 # a quicker, smaller run

Without --lib (or $QMV_LIB) the script configures and builds the shared library itself:
`cmake -S <repo> -B <build-dir> -DBUILD_SHARED_LIBS=ON -DQMV_BUILD_TESTS=OFF
-DQMV_BUILD_TOOLS=OFF -DQMV_CUDA=OFF -DQMV_INSTALL=OFF -DCMAKE_BUILD_TYPE=Release`, then
`cmake --build <build-dir> --target qmv` (incremental on later runs).

With --device gpu the same cases run against MLX's CUDA build (pip install mlx==0.32.4
mlx-cuda-13==0.32.4, on a machine with an NVIDIA GPU): mx.quantize and mx.dequantize on the GPU
stream against qmv_quantize with the mlx-cuda profile and qmv_dequantize, with no exclusions
but NaN/Inf input (the E8M0 wrap-around is a CPU-kernel effect); mx.quantized_matmul is not
compared there (its CUDA kernels are the subject of the emulated orders, docs/VERIFY.md).
Without a GPU or without MLX's CUDA backend it exits 77, printed loudly (ctest: skipped).

Exit status: 0 all comparisons agree; 1 a mismatch (listed with a reproducer); 2 a harness
error (the library cannot be built or loaded, an MLX call fails); 77 SKIPPED because numpy or
MLX cannot be imported (printed loudly; ctest shows the test as skipped, never passed).

Excluded from the bit-for-bit comparison, each counted in the summary:
  * wrap: mxfp4/mxfp8 groups whose s = fl_T(amax / M) is non-zero and <= 2^-128 (float32 and
    bfloat16 inputs only): MLX casts e + 127 < 0 to uint8, so its scale byte wraps around;
    qmv clamps to byte 0 (docs/FORMATS.md, "Where qmv defines what MLX leaves undefined").
    Only the quantize comparison excludes them: dequantize and qmv compare MLX and qmv on the
    same (qmv's) bytes, which are well defined.
  * NaN / Inf input: MLX's codes are undefined (a float-to-int cast of NaN); qmv rejects the
    whole call with QMV_STATUS_NON_FINITE. Tested separately: every mode and dtype, with a NaN,
    +Inf and -Inf, must give that status; those groups are counted as excluded.
  * dequantize, documented deviations (docs/FORMATS.md): float16 output of mx scales outside
    float16's range (byte < 103 or > 142: MLX rounds 2^(byte-127) to float16 first); E8M0
    byte 0xFF (MLX +Inf, qmv NaN); E4M3 codes and nvfp4 scales 0x7F / 0xFF (MLX +-480, qmv
    NaN). Quantize never produces these bytes, the random-byte dequantize case does. nvfp4 with
    a global scale: MLX returns float32 whatever dtype was asked; qmv returns the asked dtype,
    which must equal MLX's float32 result rounded to it (RNE), and is compared that way.
  * qmv vs quantized_matmul: outputs where MLX's own accumulation could overflow its dtype
    (the bound below needs finite intermediates); none are expected with the data here.

The qmv comparison bound (derivation; u_T = 2^-24, 2^-11, 2^-8 for float32, float16,
bfloat16; eta_T = half the smallest subnormal: 2^-150, 2^-25, 2^-134):

  MLX's CPU kernels (mlx/backend/cpu/quantized.cpp) accumulate in the input dtype T:
    affine  (_qmm_t):    sum = 0; for i: sum += x[i] * (s * T(q[i]) + b)       (all in T)
    fp modes (fp_qmm_t): per group gsum = 0; gsum += x[i] * T(v[i]); sum += s * gsum
  Every operation is one rounding to T (float16/bfloat16 compute in float32 and round back,
  which is the correctly rounded T operation), so by the standard model each term of the
  exact sum E = sum_i x_i (s q_i + b)   (fp: sum_g s_g sum_i x_i v_i) reaches the result
  multiplied by a product of n_i factors (1 + d), |d| <= u_T, with
    affine: n_i = 3 for the s*q part (s*q, +b, x*), 2 for the b part, plus the additions that
            follow term i in the running sum (K-1 for i = 0, K-i for i >= 1);
    fp:     n_i = 1 (x*v) + additions in the group sum (G-1 for j = 0, G-j after) + 1 (s*)
            + additions in the outer sum (K/G-1 for group 0, K/G-g after);
  plus 4 more for every term, which covers the SIMD variants of the same kernels (float
  lanes, a 3-level lane tree, a final rounding to T; compiled where MLX's simd::max_size<T>
  > 1) and a final conversion. Hence
    |y_mlx - E| <= B_mlx = sum_i |t_i| ((1 + u_T)^{n_i} - 1) + eta_T (1 + u_T)^{n_max} N_mul
  with |t_i| the magnitudes of the terms (|x s q|, |x b|; fp |x v s|) and N_mul the number of
  multiplications (an underflowing product adds at most eta_T; additions of subnormals are
  exact). (1 + u)^n - 1 is valid for every n (gamma_n needs n u < 1). It requires that no
  intermediate overflows: outputs where (1 + u_T)^{n_max} times S = sum_i |t_i| (fp: or a
  group's sum_i |x v|) reaches T's maximum, or where fl(s q) or fl(fl(s q) + b) could, are
  excluded (counted).
  qmv (docs/ORDER.md): |r - E| <= ((1 + u_32)^p - 1) S + eta_32 (1 + u_32)^p N_ops with
    p = 32 + 2 ceil(K/4096) + 7 (+1 for the global-scale multiply); the result is then
    rounded once to y's dtype: B_qmv = that + u_y (S + that) + eta_y.
  Checks, for y in the input dtype and in float32:
    |y_qmv - y_mlx| <= B_mlx + B_qmv   (the triangle inequality through E), and
    |y_qmv - E| <= B_qmv + e64,  |y_mlx - E| <= B_mlx + e64  (the premise of the first),
  with E evaluated in float64 and e64 = (K + 4) 2^-52 S its own error. Each violation counts
  as a mismatch.
  nvfp4 with a global scale g: mx.quantized_matmul takes no global scale, so y_mlx is MLX's
  result for the element scales alone times c = fl32(g / 2688) (exact in float64), and the
  MLX bound is multiplied by c too.
  The qmv check uses the first rows of each case (drawn without the huge and wide-range
  categories, and at least 2^5 below T's maximum) and K = 1024 (float32), 256 (float16) or
  128 (bfloat16) columns: MLX's own worst-case bound grows like K u_T and is about 0.7 S for
  bfloat16 at K = 128. The summary prints the largest observed |y_qmv - y_mlx| / bound.
"""
import argparse
import glob
import math
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time

SKIP = 77
HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.normpath(os.path.join(HERE, "..", ".."))


def skip(why, hint="Install MLX's CPU build and numpy\n"
                   "  (python3 -m pip install 'mlx[cpu]' numpy) to run it."):
    bar = "*" * 78
    print(f"{bar}\nmlx_diff: SKIPPED: {why}\n"
          f"  The differential test against MLX did NOT run. {hint}\n" + bar, flush=True)
    sys.exit(SKIP)


try:
    import numpy as np
except Exception as e:  # noqa: BLE001 - any import failure is a skip
    skip(f"numpy cannot be imported ({type(e).__name__}: {e})")
try:
    import mlx.core as mx
    mx.eval(mx.array([1.0]) + 1)  # the CPU backend really works
except Exception as e:  # noqa: BLE001
    skip(f"MLX cannot be imported or run ({type(e).__name__}: {e})")

sys.path.insert(0, HERE)
import qmv_ctypes  # noqa: E402

# ---- dtypes -----------------------------------------------------------------------------

DT = ["float32", "float16", "bfloat16"]
MXDT = {"float32": mx.float32, "float16": mx.float16, "bfloat16": mx.bfloat16}
# precision p (significant bits), minimum normal exponent, maximum exponent, largest finite
DTINFO = {
    "float32": (24, -126, 127, float(np.finfo(np.float32).max)),
    "float16": (11, -14, 15, 65504.0),
    "bfloat16": (8, -126, 127, float.fromhex("0x1.fep127")),
}


def unit_roundoff(dt):
    return 2.0 ** -DTINFO[dt][0]


def eta(dt):
    p, emin, _, _ = DTINFO[dt]
    return 2.0 ** (emin - p)  # half the smallest subnormal


def f32_to_bf16_bits(a):
    """float32 -> bfloat16 bits, round to nearest even (finite inputs; overflow gives Inf)."""
    b = np.ascontiguousarray(a, dtype=np.float32).view(np.uint32)
    return ((b + np.uint32(0x7FFF) + ((b >> np.uint32(16)) & np.uint32(1))) >> np.uint32(16)
            ).astype(np.uint16)


def bf16_bits_to_f32(b):
    return (np.asarray(b, dtype=np.uint32) << np.uint32(16)).view(np.float32)


def to_storage(v64, dt):
    """float64 values -> qmv storage of dtype dt (float32 array or uint16 bits), RNE."""
    if dt == "float32":
        return v64.astype(np.float32)
    if dt == "float16":
        return v64.astype(np.float16).view(np.uint16)  # numpy: one RNE rounding from float64
    # bfloat16: float64 -> float32 -> bfloat16 may round twice; the value is whatever comes
    # out (tie-generating categories produce values exact in bfloat16, so nothing rounds).
    return f32_to_bf16_bits(v64.astype(np.float32))


def storage_to_f64(a, dt):
    if dt == "float32":
        return a.astype(np.float64)
    if dt == "float16":
        return a.view(np.float16).astype(np.float64)
    return bf16_bits_to_f32(a).astype(np.float64)


def round_f32_to(a32, dt):
    """float32 values rounded to dt, returned as float32 (values) - MLX's T arithmetic."""
    if dt == "float32":
        return a32
    if dt == "float16":
        return a32.astype(np.float16).astype(np.float32)
    return bf16_bits_to_f32(f32_to_bf16_bits(a32))


def to_mx(a, dt):
    if dt == "float32":
        return mx.array(a)
    if dt == "float16":
        return mx.array(a.view(np.float16))
    return mx.array(a).view(mx.bfloat16)


def from_mx(arr):
    """MLX array -> numpy (float16/bfloat16 as uint16 bits)."""
    if arr.dtype == mx.bfloat16 or arr.dtype == mx.float16:
        return np.array(arr.view(mx.uint16))
    return np.array(arr)


def mx_dtype_name(d):
    return {mx.float32: "float32", mx.float16: "float16", mx.bfloat16: "bfloat16"}.get(d, str(d))


def bits_of(a):
    """Bit patterns for exact comparison."""
    return a.view(np.uint32) if a.dtype == np.float32 else a


# ---- code tables ---------------------------------------------------------------------------

E2M1 = np.array([0, .5, 1, 1.5, 2, 3, 4, 6, -0.0, -.5, -1, -1.5, -2, -3, -4, -6], np.float64)


def _e4m3(c):
    if c & 0x7F == 0x7F:
        return math.nan
    s = -1.0 if c & 0x80 else 1.0
    e, m = (c >> 3) & 15, c & 7
    return s * (m * 2.0 ** -9 if e == 0 else (8 + m) * 2.0 ** (e - 10))


E4M3 = np.array([_e4m3(c) for c in range(256)], np.float64)
E4M3_POS = E4M3[:0x7F]  # 0 .. 448, increasing
E8M0 = np.array([2.0 ** (b - 127) for b in range(255)] + [math.nan], np.float64)

MODE_M = {"mxfp4": 6.0, "mxfp8": 448.0, "nvfp4": 6.0}


# ---- test data -------------------------------------------------------------------------------

CATEGORIES = [  # (name, weight in the full mix, weight in the "moderate" rows used for qmv)
    ("normal", 14, 20), ("wide", 8, 0), ("uniform", 8, 10), ("uniform_pos", 4, 6),
    ("heavy", 8, 10), ("outlier", 4, 6), ("ties", 15, 15), ("zero", 2, 2),
    ("signed_zero", 2, 2), ("equal", 4, 4), ("negative", 6, 6), ("pow2", 12, 12),
    ("tiny", 5, 4), ("subnormal", 3, 3), ("huge", 5, 0),
]


def pow2(e):
    return np.ldexp(1.0, np.asarray(e, dtype=np.int64))


class Gen:
    """Groups of test values (float64, to be rounded to dt) for one mode / dtype."""

    def __init__(self, rng, mode, bits, gs, dt):
        self.rng, self.mode, self.bits, self.gs, self.dt = rng, mode, bits, gs, dt
        self.p, self.emin, self.emax, self.vmax = DTINFO[dt]
        # affine's range (max - min) must not overflow float32
        self.cap = 2.0 ** 125 if (mode == "affine" and dt != "float16") else self.vmax

    def exps(self, n, lo, hi):
        return pow2(self.rng.integers(lo, hi + 1, n))[:, None]

    def signs(self, shape):
        return np.where(self.rng.random(shape) < 0.5, -1.0, 1.0)

    def clip(self, v):
        return np.clip(v, -self.cap, self.cap)

    def make(self, cat, n):
        r, gs = self.rng, self.gs
        lo, hi = (-8, 8) if self.dt != "float16" else (-6, 6)
        if cat == "normal":
            return r.standard_normal((n, gs)) * self.exps(n, lo, hi)
        if cat == "wide":
            return self.clip(r.standard_normal((n, gs)) * self.exps(n, self.emin + 4, self.emax - 4))
        if cat == "uniform":
            return r.uniform(-1, 1, (n, gs)) * self.exps(n, lo, hi)
        if cat == "uniform_pos":
            return r.uniform(0, 1, (n, gs)) * self.exps(n, lo, hi)
        if cat == "heavy":
            v = r.standard_t(1.5, (n, gs)) * self.exps(n, -4, 4)
            return np.clip(v, -2.0 ** (self.emax - 3), 2.0 ** (self.emax - 3))
        if cat == "outlier":
            v = r.standard_normal((n, gs)) * self.exps(n, lo, hi)
            v[np.arange(n), r.integers(0, gs, n)] *= 1024.0 if self.dt != "float16" else 64.0
            return self.clip(v)
        if cat == "zero":
            return np.zeros((n, gs))
        if cat == "signed_zero":
            return self.signs((n, gs)) * 0.0
        if cat == "equal":
            return np.repeat(r.standard_normal((n, 1)) * self.exps(n, lo, hi), gs, axis=1)
        if cat == "negative":
            return -np.abs(r.standard_normal((n, gs))) * self.exps(n, lo, hi)
        if cat == "tiny":
            return r.standard_normal((n, gs)) * self.exps(n, self.emin - self.p + 2, self.emin + 3)
        if cat == "subnormal":
            k = r.integers(-(2 ** (self.p - 1)) + 1, 2 ** (self.p - 1), (n, gs))
            return k * 2.0 ** (self.emin - self.p + 1)
        if cat == "huge":
            v = self.signs((n, gs)) * r.uniform(0.5, 1.0, (n, gs)) * self.exps(
                n, self.emax - 3, self.emax)
            return np.clip(v, -min(self.cap, self.vmax), min(self.cap, self.vmax))
        if cat == "ties":
            return self.ties(n)
        if cat == "pow2":
            return self.pow2_amax(n)
        raise ValueError(cat)

    def place_amax(self, v, amax):
        """Scale rows of v (|v| < 1) below amax and put +-amax at a random position."""
        n = v.shape[0]
        v = v * amax[:, None] * 0.999
        v[np.arange(n), self.rng.integers(0, self.gs, n)] = amax * self.signs(n)
        return v

    def ties(self, n):
        r, gs, mode = self.rng, self.gs, self.mode
        if mode in ("mxfp4", "nvfp4"):
            # E2M1 midpoints 0.25 .. 5 and the values themselves, times the exact scale
            cand = np.array([.25, .75, 1.25, 1.75, 2.5, 3.5, 5, 0, .5, 1, 1.5, 2, 3, 4, 6])
            u = cand[r.integers(0, len(cand), (n, gs))] * self.signs((n, gs))
            if mode == "mxfp4":
                # amax = 6 * 2^e: s = fl_T(amax / 6) = 2^e exactly, x = w / 2^e is the tie
                elo, ehi = (-22, 13) if self.dt == "float16" else (-60, 60)
                scale = self.exps(n, elo, ehi)[:, 0]
            else:
                # amax = 6 * s for an E4M3 value s: the scale byte encodes s exactly
                codes = r.integers(1, 0x7F, n)
                scale = E4M3_POS[codes]
            u[np.arange(n), r.integers(0, gs, n)] = 6.0 * self.signs(n)
            return u * scale[:, None]
        if mode == "mxfp8":
            # E4M3 midpoints (exact in every dtype), amax = 448 * 2^e
            i = r.integers(0, 0x7E, (n, gs))
            mid = (E4M3_POS[i] + E4M3_POS[i + 1]) / 2
            u = np.where(r.random((n, gs)) < 0.75, mid, E4M3_POS[i]) * self.signs((n, gs))
            u[np.arange(n), r.integers(0, gs, n)] = 448.0 * self.signs(n)
            elo, ehi = (-14, 7) if self.dt == "float16" else (-60, 60)
            return u * self.exps(n, elo, ehi)
        # affine: range [0, 2^b - 1] * 2^e gives scale -2^e, bias the maximum, and
        # (w - bias) / scale = k + 0.5 exactly: a rint tie (exact in T up to p bits)
        top = 2 ** self.bits - 1
        k = r.integers(0, top, (n, gs)) + np.where(r.random((n, gs)) < 0.8, 0.5, 0.0)
        k[:, 0], k[:, 1] = 0.0, float(top)
        k = r.permuted(k, axis=1)
        sgn = self.signs(n)[:, None]
        return sgn * k * self.exps(n, -10, min(10, int(math.log2(self.cap / top)) - 1))

    def pow2_amax(self, n):
        """amax exactly 2^e, M*2^e, an E4M3 midpoint times 6 (nvfp4), or one ulp of T beside."""
        r = self.rng
        M = MODE_M.get(self.mode, float(2 ** self.bits - 1))
        lo, hi = (-12, 12) if self.dt == "float16" else (-40, 40)
        e = r.integers(lo, hi + 1, n)
        base = np.where(r.random(n) < 0.5, pow2(e), M * pow2(e))
        if self.mode == "nvfp4":
            i = r.integers(0, 0x7E, n)
            mid = 6.0 * (E4M3_POS[i] + E4M3_POS[i + 1]) / 2
            base = np.where(r.random(n) < 0.4, mid, base)
        # one ulp (of T) up or down, or exact
        _, ex = np.frexp(base)  # base = m * 2^ex, m in [0.5, 1)
        ulp = np.ldexp(1.0, ex - 1 - (self.p - 1))
        is_p2 = base == np.ldexp(0.5, ex)
        down = np.where(is_p2, ulp / 2, ulp)
        which = r.integers(0, 3, n)
        amax = np.where(which == 0, base, np.where(which == 1, base + ulp, base - down))
        amax = np.minimum(amax, min(self.cap, self.vmax))
        return self.place_amax(r.uniform(-1, 1, (n, self.gs)), amax)

    def groups(self, n, moderate=False):
        col = 2 if moderate else 1
        names = [c[0] for c in CATEGORIES]
        w = np.array([c[col] for c in CATEGORIES], np.float64)
        cat = self.rng.choice(len(names), n, p=w / w.sum())
        out = np.empty((n, self.gs))
        for ci, name in enumerate(names):
            idx = np.nonzero(cat == ci)[0]
            if len(idx):
                out[idx] = self.make(name, len(idx))
        lim = min(self.cap, self.vmax)  # representable: rounding to T cannot overflow
        out = np.clip(out, -lim, lim)
        if moderate:
            # rows for the qmv check stay 2^5 below T's maximum (the ties, pow2 and outlier
            # structure survives: groups are scaled by powers of two)
            amax = np.abs(out).max(axis=1)
            sh = np.ceil(np.log2(np.maximum(amax / (lim * 2.0 ** -5), 1.0)))
            out = out * pow2(-sh.astype(np.int64))[:, None]
        return out


# ---- helpers on quantized data -------------------------------------------------------------


def unpack_codes(packed, bits, k):
    """[rows, words] uint32 -> [rows, k] integer codes (LSB-first stream per row)."""
    rows = packed.shape[0]
    by = np.ascontiguousarray(packed).view(np.uint8).reshape(rows, -1)
    bitsarr = np.unpackbits(by, axis=1, bitorder="little")[:, : k * bits]
    bitsarr = bitsarr.reshape(rows, k, bits).astype(np.int64)
    return (bitsarr << np.arange(bits, dtype=np.int64)).sum(axis=2)


def wrap_groups(w_f32, mode, gs, dt):
    """mx-mode groups where MLX's E8M0 byte wraps: 0 < fl_T(amax / M) <= 2^-128."""
    if mode not in ("mxfp4", "mxfp8"):
        return np.zeros(w_f32.size // gs, bool)
    amax = np.abs(w_f32.reshape(-1, gs)).max(axis=1).astype(np.float32)
    s = round_f32_to(amax / np.float32(MODE_M[mode]), dt)
    return (s > 0) & (s <= np.float32(2.0 ** -128))


# ---- the comparisons ---------------------------------------------------------------------


class Stats:
    def __init__(self):
        self.q_groups = 0  # groups whose quantization was compared
        self.q_mismatch = 0
        self.d_groups = 0  # group x output-dtype dequantizations compared
        self.d_mismatch = 0
        self.m_outputs = 0  # qmv outputs compared with quantized_matmul
        self.m_mismatch = 0
        self.m_exact_viol = 0  # qmv outside its own bound of the exact product
        self.m_mlx_viol = 0  # MLX outside the derived bound (the harness's premise fails)
        self.m_ratio = 0.0  # max |y_qmv - y_mlx| / bound
        self.excluded = {}

    def exclude(self, why, n):
        if n:
            self.excluded[why] = self.excluded.get(why, 0) + int(n)


class Ctx:
    def __init__(self, lib, rng, verbose, max_reports=8):
        self.lib, self.rng, self.verbose = lib, rng, verbose
        self.reports = []
        self.max_reports = max_reports

    def report(self, msg):
        if len(self.reports) < self.max_reports:
            self.reports.append(msg)
            print("MISMATCH: " + msg, flush=True)


# The MLX backend under test and the qmv rounding profile that claims its bytes (main() sets
# them from --device).
DEVICE = "cpu"
PROFILE = "mlx-cpu"


def reproducer(mode, bits, gs, dt, group_vals, g=None):
    vals = ", ".join(repr(float(v).hex()) for v in group_vals)
    gs_txt = f", global_scale=mx.array({float(g).hex()!r})" if g is not None else ""
    return (f"w = mx.array([[float.fromhex(h) for h in [{vals}]]]).astype(mx.{dt}); "
            f"mx.quantize(w, {gs}, {bits}, mode='{mode}'{gs_txt})  # qmv_quantize(fmt "
            f"{mode}/{bits}/{gs}, {dt}, profile {PROFILE}; MLX on the {DEVICE})")


def compare_quantize(ctx, st, mode, bits, gs, dt, w, g, mxq, qq):
    """Bit-for-bit comparison of mx.quantize and qmv_quantize outputs, per group."""
    rows, k = w.shape
    ng = k // gs
    wpg = gs * bits // 32
    mx_packed = from_mx(mxq[0])
    mx_scales = from_mx(mxq[1])
    q_packed, q_scales, q_biases = qq
    bad = (mx_packed.reshape(rows, ng, wpg) != q_packed.reshape(rows, ng, wpg)).any(axis=2)
    bad |= bits_of(mx_scales) != bits_of(q_scales)
    if mode == "affine":
        bad |= bits_of(from_mx(mxq[2])) != bits_of(q_biases)
    bad = bad.reshape(-1)
    w32 = w.astype(np.float32) if dt == "float32" else (
        w.view(np.float16).astype(np.float32) if dt == "float16" else bf16_bits_to_f32(w))
    wrap = wrap_groups(w32, mode, gs, dt) if DEVICE == "cpu" else np.zeros(bad.size, bool)
    st.exclude("quantize: E8M0 exponent wrap-around (MLX undefined)", wrap.sum())
    cmp = ~wrap
    st.q_groups += int(cmp.sum())
    nbad = int((bad & cmp).sum())
    st.q_mismatch += nbad
    if nbad:
        gi = int(np.nonzero(bad & cmp)[0][0])
        vals = w32.reshape(-1, gs)[gi]
        ctx.report(f"quantize {mode}/{bits}/{gs} {dt}: {nbad} groups differ; first: group {gi}"
                   f" (row {gi // ng}); reproducer: " + reproducer(mode, bits, gs, dt, vals, g))


def mx_dequantize(mode, bits, gs, packed, scales, biases, out_dt, g, sdt):
    a = mx.array(packed)
    s = to_mx(scales, sdt) if mode == "affine" else mx.array(scales)
    b = to_mx(biases, sdt) if mode == "affine" else None
    kw = {}
    if g is not None:
        kw["global_scale"] = mx.array(np.float32(g))
    r = mx.dequantize(a, s, b, group_size=gs, bits=bits, mode=mode, dtype=MXDT[out_dt], **kw)
    mx.eval(r)
    return r


def compare_dequantize(ctx, st, mode, bits, gs, sdt, packed, scales, biases, k, g,
                       extra_excl=None, what="dequantize"):
    """qmv_dequantize vs mx.dequantize for every output dtype, on the same bytes."""
    rows = packed.shape[0]
    ng = k // gs
    for out_dt in DT:
        r = mx_dequantize(mode, bits, gs, packed, scales, biases, out_dt, g, sdt)
        got_dt = mx_dtype_name(r.dtype)
        ref = from_mx(r)
        if got_dt != out_dt:
            if mode == "nvfp4" and g is not None and got_dt == "float32":
                # documented: MLX's CPU returns float32 here; qmv returns the asked dtype,
                # which must be MLX's float32 value rounded once to it
                with np.errstate(over="ignore"):  # overflow to Inf is the right rounding
                    ref = to_storage(ref.astype(np.float64), out_dt)
            else:
                raise RuntimeError(f"mx.dequantize returned {got_dt} for dtype {out_dt}")
        out = ctx.lib.dequantize(mode, bits, gs, sdt, packed, scales, biases, k, out_dt, g)
        # NaN results: qmv writes its canonical quiet NaN (docs/FORMATS.md), MLX any pattern
        both_nan = np.isnan(storage_to_f64(ref, out_dt)) & np.isnan(storage_to_f64(out, out_dt))
        bad = ((bits_of(ref) != bits_of(out)) & ~both_nan).reshape(rows, ng, gs).any(axis=2)
        bad = bad.reshape(-1)
        excl = np.zeros(rows * ng, bool)
        if mode in ("mxfp4", "mxfp8") and out_dt == "float16":
            sb = scales.reshape(-1)
            dev = (sb < 103) | (sb > 142)
            st.exclude(f"{what}: float16 output, mx scale outside float16 (documented)",
                       (dev & ~(extra_excl if extra_excl is not None else False)).sum())
            excl |= dev
        if extra_excl is not None:
            excl |= extra_excl
        cmp = ~excl
        st.d_groups += int(cmp.sum())
        nbad = int((bad & cmp).sum())
        st.d_mismatch += nbad
        if nbad:
            gi = int(np.nonzero(bad & cmp)[0][0])
            rr, gg = divmod(gi, ng)
            sl = slice(gg * gs, (gg + 1) * gs)
            ctx.report(f"{what} {mode}/{bits}/{gs} scales {sdt} -> {out_dt}"
                       f"{' g=' + float(g).hex() if g is not None else ''}: {nbad} groups "
                       f"differ; first: row {rr} group {gg}: scale "
                       f"{scales[rr, gg]!r} bias {biases[rr, gg] if biases is not None else '-'}"
                       f" packed words {packed[rr, gg * gs * bits // 32:(gg + 1) * gs * bits // 32]}"
                       f" mlx {ref[rr, sl][:8]} qmv {out[rr, sl][:8]}")


def growth(u, n):
    """(1 + u)^n - 1, rounded up a little (float64 evaluation)."""
    return np.expm1(np.asarray(n, np.float64) * math.log1p(u)) * (1 + 1e-9)


def compare_qmm(ctx, st, mode, bits, gs, dt, packed, scales, biases, k, g, x):
    """qmv_qmv vs mx.quantized_matmul(transpose=True) within B_mlx + B_qmv (see top)."""
    rows = packed.shape[0]
    m = x.shape[0]
    ng = k // gs
    # exact values
    codes = unpack_codes(packed, bits, k)
    xf = storage_to_f64(x, dt)  # [m, k]
    if mode == "affine":
        s = np.repeat(storage_to_f64(scales, dt), gs, axis=1)
        b = np.repeat(storage_to_f64(biases, dt), gs, axis=1)
        sq = s * codes  # exact in float64
        wexact = sq + b
        ta = np.abs(xf)[:, None, :] * np.abs(sq)[None]  # [m, rows, k]
        tb = np.abs(xf)[:, None, :] * np.abs(b)[None]
        i = np.arange(k)
        adds = np.where(i == 0, k - 1, k - i)
        u = unit_roundoff(dt)
        b_mlx = (ta * growth(u, adds + 3 + 4)).sum(axis=2) + (tb * growth(u, adds + 2 + 4)).sum(axis=2)
        S = ta.sum(axis=2) + tb.sum(axis=2)
        n_max = k + 3 + 4
        n_mul = 2 * k
        # fl(s*q) and fl(fl(s*q) + b) must stay finite
        elem_mag = np.maximum(np.abs(sq).max(axis=1) * (1 + u),
                              (np.abs(sq) * (1 + u) + np.abs(b)).max(axis=1) * (1 + u))
        part = S  # every partial sum is at most S (1 + u)^n_max
    else:
        lut = E2M1 if bits == 4 else E4M3
        v = lut[codes]
        sv = E4M3[scales] if mode == "nvfp4" else E8M0[scales]
        s = np.repeat(sv, gs, axis=1)
        wexact = v * s
        t = np.abs(xf)[:, None, :] * np.abs(wexact)[None]
        i = np.arange(k)
        j, gi = i % gs, i // gs
        inner = np.where(j == 0, gs - 1, gs - j)
        outer = np.where(gi == 0, ng - 1, ng - gi)
        u = unit_roundoff(dt)
        b_mlx = (t * growth(u, 1 + inner + 1 + outer + 4)).sum(axis=2)
        S = t.sum(axis=2)
        n_max = gs + ng + 6
        n_mul = k + ng
        elem_mag = np.zeros(rows)  # fp: T(v) and s are exact; products are in the sums
        # partial sums: the outer sum is at most S (1 + u)^n, a group sum sum|x v| (1 + u)^n
        part = np.maximum(S, (np.abs(xf)[:, None, :] * np.abs(v)[None]).sum(axis=2))
    b_mlx = b_mlx + eta(dt) * (1 + u) ** n_max * (n_mul + 1)
    E = xf @ wexact.T  # [m, rows], float64
    # MLX
    a = mx.array(packed)
    sc = to_mx(scales, dt) if mode == "affine" else mx.array(scales)
    bi = to_mx(biases, dt) if mode == "affine" else None
    ym = mx.quantized_matmul(to_mx(x, dt), a, sc, bi, transpose=True, group_size=gs, bits=bits,
                             mode=mode)
    mx.eval(ym)
    if mx_dtype_name(ym.dtype) != dt:
        raise RuntimeError(f"mx.quantized_matmul returned {ym.dtype} for {dt} input")
    y_mlx = storage_to_f64(from_mx(ym), dt)
    c = 1.0
    if g is not None:
        c = float(np.float32(np.float32(g) / np.float32(2688.0)))
        y_mlx = y_mlx * c  # exact: two <= 24-bit significands
        b_mlx = b_mlx * c
        S = S * c
        E = E * c
    # rows whose MLX accumulation could overflow T (the bound needs finite intermediates)
    vmax = DTINFO[dt][3]
    risky = (part * (1 + u) ** n_max >= vmax) | (elem_mag >= vmax)[None, :]
    # the premise of the comparison: MLX itself within B_mlx of the exact product
    e64 = (k + 4) * 2.0 ** -52 * S
    mlx_viol = ~risky & ~(np.abs(y_mlx - E) <= b_mlx + e64)
    st.m_mlx_viol += int(mlx_viol.sum())
    if mlx_viol.any():
        mi, ri = np.argwhere(mlx_viol)[0]
        ctx.report(f"harness: mx.quantized_matmul {mode}/{bits}/{gs} {dt} K={k} outside the "
                   f"derived MLX bound: m={mi} row={ri} mlx {y_mlx[mi, ri]!r} exact "
                   f"{E[mi, ri]!r} bound {b_mlx[mi, ri]!r}")
    p = 32 + 2 * math.ceil(k / 4096) + 7 + (1 if g is not None else 0)
    u32 = 2.0 ** -24
    n_ops = 2 * k + 4 * (k // 16 + 1) + 256
    b_r = growth(u32, p) * S + eta("float32") * (1 + u32) ** p * n_ops
    for y_dt in (dt, "float32") if dt != "float32" else ("float32",):
        y = ctx.lib.qmv(mode, bits, gs, dt, packed, scales, biases, k, x, dt, y_dt, g)
        yq = storage_to_f64(y, y_dt)
        b_qmv = b_r + unit_roundoff(y_dt) * (S + b_r) + eta(y_dt)
        bound = b_mlx + b_qmv
        with np.errstate(invalid="ignore", over="ignore"):
            diff = np.abs(yq - y_mlx)
        ok = np.isfinite(yq) & np.isfinite(y_mlx) & (diff <= bound)
        cmp = ~risky
        st.exclude("qmv: output where MLX's accumulation may overflow its dtype", risky.sum())
        st.m_outputs += int(cmp.sum())
        nbad = int((~ok & cmp).sum())
        st.m_mismatch += nbad
        with np.errstate(invalid="ignore", divide="ignore"):
            ratio = np.where(cmp & (bound > 0), diff / bound, 0.0)
        if np.isfinite(ratio).all() and ratio.size:
            st.m_ratio = max(st.m_ratio, float(ratio.max()))
        exact_ok = np.abs(yq - E) <= b_qmv + e64
        nviol = int((~exact_ok & cmp).sum())
        st.m_exact_viol += nviol
        if nbad or nviol:
            mi, ri = np.argwhere((~ok | ~exact_ok) & cmp)[0]
            ctx.report(f"qmv {mode}/{bits}/{gs} {dt} -> y {y_dt}"
                       f"{' g=' + float(g).hex() if g is not None else ''} K={k}: {nbad} "
                       f"outputs outside MLX bound, {nviol} outside qmv's own; first m={mi} "
                       f"row={ri}: qmv {yq[mi, ri]!r} mlx {y_mlx[mi, ri]!r} exact "
                       f"{E[mi, ri]!r} bound {bound[mi, ri]!r}")


# ---- one case: a mode/format/dtype -------------------------------------------------------


def make_x(rng, m, k, dt):
    lo, hi = (-9, -4) if dt == "float16" else (-3, 3)
    xv = rng.standard_normal((m, k)) * pow2(rng.integers(lo, hi + 1, (m, k)))
    xv[rng.random((m, k)) < 0.05] = 0.0
    return to_storage(xv, dt)


def run_case(ctx, st, mode, bits, gs, dt, n_groups, with_g, qmm_rows):
    rng = ctx.rng
    k = int(rng.choice([256, 512, 1024, 2048]))
    k = max(k, gs)
    rows = max(1, -(-n_groups * gs // k))
    gen = Gen(rng, mode, bits, gs, dt)
    gpr = k // gs
    # chunks of rows, each quantized by one call (nvfp4 with g: a different g per chunk); the
    # first rows of each chunk use the moderate mix (no huge values) and go to the qmv check
    # (and at most about 4M elements per call, to bound the memory)
    nch = max(4 if with_g else 1, -(-rows * k // (4 << 20)))
    bounds = np.linspace(0, rows, nch + 1).astype(int)
    nq = max(1, qmm_rows // nch)
    for ci in range(nch):
        r0, r1 = bounds[ci], bounds[ci + 1]
        if r1 <= r0:
            continue
        n_mod = min(r1 - r0, nq)
        vals = np.concatenate([gen.groups(n_mod * gpr, moderate=True),
                               gen.groups((r1 - r0 - n_mod) * gpr)]).reshape(r1 - r0, k)
        wc = to_storage(vals, dt)
        g = None
        if with_g:
            amax = float(np.abs(storage_to_f64(wc, dt)).max())
            amax = amax if amax > 0 else 1.0
            g = [amax, amax * 2.0 ** -12, amax * 2.0 ** 12, 10.0 ** rng.uniform(-3, 3)][ci % 4]
            g = float(np.float32(min(max(g, 1e-30), 1e30)))
        kw = {"global_scale": mx.array(np.float32(g))} if g is not None else {}
        mxq = mx.quantize(to_mx(wc, dt), gs, bits, mode=mode, **kw)
        mx.eval(mxq)
        qq = ctx.lib.quantize(mode, bits, gs, dt, wc, g, profile=PROFILE)
        compare_quantize(ctx, st, mode, bits, gs, dt, wc, g, mxq, qq)
        compare_dequantize(ctx, st, mode, bits, gs, dt, qq[0], qq[1], qq[2], k, g)
        if DEVICE != "cpu":
            continue
        # qmv vs quantized_matmul on the moderate rows of this chunk, with a K short enough
        # that MLX's low-precision bound stays informative
        kq = {"float32": 1024, "float16": 256, "bfloat16": 128}[dt]
        kq = max(gs, min(k, kq))
        words = kq * bits // 32
        x = make_x(rng, 3, kq, dt)
        compare_qmm(ctx, st, mode, bits, gs, dt,
                    np.ascontiguousarray(qq[0][:n_mod, :words]),
                    np.ascontiguousarray(qq[1][:n_mod, : kq // gs]),
                    None if qq[2] is None else np.ascontiguousarray(qq[2][:n_mod, : kq // gs]),
                    kq, g, x)
    if ctx.verbose:
        print(f"  {mode}/{bits}/{gs} {dt}{' +g' if with_g else ''}: {rows} x {k}", flush=True)


def random_bytes_dequant(ctx, st, mode, bits, gs, rows, k, with_g=False):
    """fp modes on arbitrary code and scale bytes (NaN codes included), every output dtype."""
    rng = ctx.rng
    packed = rng.integers(0, 2 ** 32, (rows, k * bits // 32), dtype=np.uint64).astype(np.uint32)
    scales = rng.integers(0, 256, (rows, k // gs), dtype=np.uint64).astype(np.uint8)
    ng = k // gs
    if mode == "mxfp8":
        codes = packed.view(np.uint8).reshape(rows, k)
        nan_code = ((codes & 0x7F) == 0x7F).reshape(rows, ng, gs).any(axis=2)
    else:
        nan_code = np.zeros((rows, ng), bool)
    nan_scale = (scales == 0xFF) if mode != "nvfp4" else ((scales & 0x7F) == 0x7F)
    excl = (nan_code | nan_scale).reshape(-1)
    gvals = [float(np.float32(rng.uniform(0.5, 300.0))), float(np.float32(1e-3))] if with_g \
        else [None]
    for g in gvals:
        st.exclude("dequantize (random bytes): NaN code or scale (documented)",
                   excl.sum() * len(DT))
        compare_dequantize(ctx, st, mode, bits, gs, "float32", packed, scales, None, k, g,
                           extra_excl=excl, what="dequantize (random bytes)")


def non_finite(ctx, st, mode, bits, gs, with_g):
    """NaN / Inf inputs: MLX undefined; qmv must reject the call with NON_FINITE."""
    for dt in DT:
        for bad in (math.nan, math.inf, -math.inf):
            v = np.ones((2, 128), np.float64)
            v[1, 77] = bad
            w = to_storage(v, dt)
            stt = ctx.lib.quantize_status(mode, bits, gs, dt, w, 1.0 if with_g else None)
            if stt != qmv_ctypes.STATUS_NON_FINITE:
                st.q_mismatch += 1
                ctx.report(f"non-finite {mode}/{bits}/{gs} {dt}: {bad} in w gave status {stt},"
                           f" expected QMV_STATUS_NON_FINITE ({qmv_ctypes.STATUS_NON_FINITE})")
            st.exclude("quantize: NaN/Inf input (MLX undefined; qmv NON_FINITE, checked)",
                       v.size // gs)


# ---- the library ------------------------------------------------------------------------------


def add_lib_args(ap):
    """The options of find_or_build_lib, shared by the scripts of tests/mlx."""
    ap.add_argument("--lib", help="shared libqmv to test (default: $QMV_LIB, else build one)")
    ap.add_argument("--build-dir", help="scratch build dir for the shared library")
    ap.add_argument("--cmake", help="cmake executable for that build")
    ap.add_argument("--c-compiler", help="C compiler for that build")
    ap.add_argument("--generator", help="CMake generator for that build")
    ap.add_argument("--make-program", help="CMAKE_MAKE_PROGRAM for that build")


def find_or_build_lib(args):
    path = args.lib or os.environ.get("QMV_LIB")
    if path:
        return path
    cmake = args.cmake or shutil.which("cmake")
    if not cmake:
        raise RuntimeError("cmake not found: pass --lib /path/to/libqmv.so or --cmake")
    bdir = args.build_dir or os.path.join(tempfile.gettempdir(), f"qmv-mlx-diff-{os.getuid()}")
    if not os.path.exists(os.path.join(bdir, "CMakeCache.txt")):
        cfg = [cmake, "-S", REPO, "-B", bdir, "-DBUILD_SHARED_LIBS=ON", "-DQMV_BUILD_TESTS=OFF",
               "-DQMV_BUILD_TOOLS=OFF", "-DQMV_CUDA=OFF", "-DQMV_INSTALL=OFF",
               "-DCMAKE_BUILD_TYPE=Release"]
        if args.c_compiler:
            cfg.append(f"-DCMAKE_C_COMPILER={args.c_compiler}")
        if args.generator:
            cfg += ["-G", args.generator]
        if args.make_program:
            cfg.append(f"-DCMAKE_MAKE_PROGRAM={args.make_program}")
        subprocess.run(cfg, check=True, stdout=subprocess.DEVNULL)
    subprocess.run([cmake, "--build", bdir, "--target", "qmv", "--parallel", "2"], check=True,
                   stdout=subprocess.DEVNULL)
    libs = sorted(p for p in glob.glob(os.path.join(bdir, "libqmv.so*")) if os.path.isfile(p))
    libs += sorted(glob.glob(os.path.join(bdir, "libqmv*.dylib")))
    if not libs:
        raise RuntimeError(f"no libqmv.so in {bdir} after building")
    return libs[0]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_lib_args(ap)
    ap.add_argument("--groups", type=int, default=1_100_000,
                    help="quantized groups per mode (default 1100000)")
    ap.add_argument("--qmm-rows", type=int, default=1024,
                    help="rows per mode and dtype compared with mx.quantized_matmul")
    ap.add_argument("--seed", type=int, default=20260907)
    ap.add_argument("--threads", type=int, default=0, help="qmv threads (0: OpenMP default)")
    ap.add_argument("--only", help="run only modes whose name contains this (affine, nvfp4+g..)")
    ap.add_argument("--device", choices=("cpu", "gpu"), default="cpu",
                    help="MLX backend to compare with: cpu (profile mlx-cpu) or gpu (MLX's CUDA "
                         "build, profile mlx-cuda)")
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args()
    global DEVICE, PROFILE
    DEVICE, PROFILE = args.device, {"cpu": "mlx-cpu", "gpu": "mlx-cuda"}[args.device]
    if DEVICE == "gpu":
        try:
            if not mx.is_available(mx.gpu):
                raise RuntimeError("this MLX has no usable GPU backend (no CUDA build, or no GPU)")
            mx.eval(mx.add(mx.array([1.0]), 1, stream=mx.gpu))
        except Exception as e:  # noqa: BLE001 - no GPU backend is a skip
            skip(f"MLX's GPU backend cannot run here ({type(e).__name__}: {e})",
                 "It needs an NVIDIA GPU and MLX's CUDA build\n"
                 "  (python3 -m pip install mlx==0.32.4 mlx-cuda-13==0.32.4).")

    t0 = time.time()
    try:
        libpath = find_or_build_lib(args)
        lib = qmv_ctypes.Qmv(libpath, args.threads)
    except Exception as e:  # noqa: BLE001
        print(f"mlx_diff: ERROR: cannot build or load the qmv shared library: {e}",
              file=sys.stderr)
        return 2
    print(f"mlx_diff: MLX {mx.__version__} (compared on the {DEVICE}, profile {PROFILE}), "
          f"numpy {np.__version__}, Python {platform.python_version()}, "
          f"{platform.machine()}", flush=True)
    print(f"mlx_diff: qmv {lib.version()} (order {lib.order_version()}) from {libpath}; "
          f"seed {args.seed}; built/loaded in {time.time() - t0:.1f} s", flush=True)
    mx.set_default_device(mx.cpu if DEVICE == "cpu" else mx.gpu)
    ctx = Ctx(lib, np.random.default_rng(args.seed), args.verbose)

    variants = [
        ("affine", [(b, g) for b in (1, 2, 3, 4, 5, 6, 8) for g in (32, 64, 128)], False),
        ("mxfp4", [(4, 32)], False),
        ("nvfp4", [(4, 16)], False),
        ("nvfp4+g", [(4, 16)], True),
        ("mxfp8", [(8, 32)], False),
    ]
    if DEVICE == "gpu":
        # qmv has no mlx-cuda rule for one bit yet (docs/FORMATS.md): nothing to compare
        print("mlx_diff: 1-bit affine is not compared on the GPU (no mlx-cuda rule for it yet)")
        variants[0] = ("affine", [(b, g) for b, g in variants[0][1] if b != 1], False)
    stats = {}
    try:
        for name, fmts, with_g in variants:
            if args.only and args.only not in name:
                continue
            mode = name.split("+")[0]
            st = stats[name] = Stats()
            tm = time.time()
            per = -(-args.groups // (len(fmts) * len(DT)))
            qrows = max(8, args.qmm_rows // len(fmts)) if len(fmts) > 1 else args.qmm_rows
            for bits, gs in fmts:
                for dt in DT:
                    run_case(ctx, st, mode, bits, gs, dt, per, with_g, qrows)
                non_finite(ctx, st, mode, bits, gs, with_g)
            if mode != "affine":
                random_bytes_dequant(ctx, st, mode, fmts[0][0], fmts[0][1], 512, 1024, with_g)
            print(f"mlx_diff: {name:8s} done in {time.time() - tm:5.1f} s", flush=True)
    except Exception as e:  # noqa: BLE001 - a harness error is a failure, not a skip
        import traceback
        traceback.print_exc()
        print(f"mlx_diff: ERROR: {type(e).__name__}: {e}", file=sys.stderr)
        return 2

    # ---- summary ----
    print(f"\nmlx_diff summary (MLX {mx.__version__} on the {DEVICE}, qmv {lib.version()}, "
          f"profile {PROFILE})")
    print("(dequant: groups x output dtypes; qmv: outputs y[m][n] x y dtypes; mism: mismatches)")
    hdr = (f"{'mode':9s} {'quantize groups':>15s} {'mism':>5s} {'dequant groups':>15s} "
           f"{'mism':>5s} {'qmv outputs':>12s} {'mism':>5s} {'max diff/bound':>14s}")
    print(hdr)
    total_bad = 0
    for name, st in stats.items():
        bad_m = st.m_mismatch + st.m_exact_viol + st.m_mlx_viol
        total_bad += st.q_mismatch + st.d_mismatch + bad_m
        print(f"{name:9s} {st.q_groups:15,d} {st.q_mismatch:5d} {st.d_groups:15,d} "
              f"{st.d_mismatch:5d} {st.m_outputs:12,d} {bad_m:5d} {st.m_ratio:14.3g}")
    print("excluded (not compared), per mode:")
    for name, st in stats.items():
        if not st.excluded:
            print(f"  {name}: none")
        for why, n in st.excluded.items():
            print(f"  {name}: {n:,d} {why}")
    few = [n for n, st in stats.items() if st.q_groups < 1_000_000]
    if few and args.groups >= 1_000_000 and not args.only:
        print(f"mlx_diff: FAIL: fewer than 1,000,000 compared groups for {few}")
        total_bad += 1
    print(f"mlx_diff: {'PASS' if total_bad == 0 else 'FAIL'}: {total_bad} mismatches, "
          f"{time.time() - t0:.1f} s")
    return 0 if total_bad == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
