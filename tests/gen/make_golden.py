#!/usr/bin/env python3
"""make_golden.py - golden quantize/dequantize data from MLX itself (CPU stream).

Writes tests/data/mlx_golden.bin and tests/data/mlx_golden.idx, read by tests/check_quantize.c
(format: tests/data/README.md). Run from anywhere:

    python3 tests/gen/make_golden.py            # needs `pip install mlx[cpu]`; no numpy

Every case is a small matrix (ROWS x K) of random-normal rows plus adversarial rows, quantized
by mx.quantize on the CPU stream, then dequantized by mx.dequantize. Cases: affine bits
{2,3,4,5,6,8} x group {32,64,128}; mxfp4; nvfp4 without and with a global scale; mxfp8; each
for input dtypes float32, float16, bfloat16.

Inputs left out on purpose (MLX's own result is undefined or not meaningful there):
  * NaN and Inf (FORMATS.md §2.1, §3.2, §7.10): affine codes of NaN are UB in MLX's kernel;
    qmv rejects non-finite input with QMV_STATUS_NON_FINITE instead.
  * mx groups whose amax/maxval (rounded to the input dtype) is below 2^-127 but not 0:
    MLX's scale byte e + 127 wraps through a uint8 cast (FORMATS.md §3.2, §7.19).
    The generator asserts that no group is in that range.
  * Values whose affine range (max - min) overflows float32.

The script also emulates, in plain Python, the rules of FORMATS.md and records in the index
header how many groups MLX's output disagrees with each rule (provenance of what the data
says about the installed MLX version). The data itself is always MLX's output, never the
emulation's.
"""
import math
import os
import random
import struct
import sys
import zlib

import mlx.core as mx

ROWS = 10
K = 256
SEED = 20260901
HERE = os.path.dirname(os.path.abspath(__file__))
OUT_DIR = os.path.normpath(os.path.join(HERE, "..", "data"))

DTYPES = {"float32": mx.float32, "float16": mx.float16, "bfloat16": mx.bfloat16}
DSIZE = {"float32": 4, "float16": 2, "bfloat16": 2}

# ---- exact rounding helpers (Python floats are binary64) ------------------------------


def rnd(x, p, emin, emax):
    """x (a double) rounded to nearest even in a binary format with p significant bits,
    minimum normal exponent emin and maximum exponent emax; overflow gives inf."""
    if x == 0 or math.isinf(x) or math.isnan(x):
        return x
    _, ex = math.frexp(abs(x))
    e = max(ex - 1, emin)
    q = math.ldexp(1.0, e - (p - 1))
    r = round(abs(x) / q) * q  # round() is ties-to-even; the quotient is exact
    if r > math.ldexp(2.0 - 2.0 ** (1 - p), emax):
        r = math.inf
    return math.copysign(r, x)


ROUND = {
    "float32": lambda x: rnd(x, 24, -126, 127),
    "float16": lambda x: rnd(x, 11, -14, 15),
    "bfloat16": lambda x: rnd(x, 8, -126, 127),
}
F32 = ROUND["float32"]

E2M1 = [0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0, -0.0, -0.5, -1.0, -1.5, -2.0, -3.0, -4.0, -6.0]


def e4m3_value(c):
    s = -1.0 if c & 0x80 else 1.0
    e, m = (c >> 3) & 15, c & 7
    if e == 0:
        return s * m * 2.0 ** -9
    return s * (8 + m) * 2.0 ** (e - 10)


E4M3_POS = [e4m3_value(c) for c in range(0x7F)]  # finite non-negative codes 0..0x7E


def e4m3_rne(x):
    """RNE with saturation at 448 (MLX's ToFP8 for finite x)."""
    s = 0x80 if math.copysign(1.0, x) < 0 else 0
    a = abs(x)
    if a >= 448.0:
        return s | 0x7E
    best, bd = 0, None
    for c, v in enumerate(E4M3_POS):
        d = abs(a - v)
        if bd is None or d < bd or (d == bd and (c & 1) == 0):
            best, bd = c, d
    return s | best


def argmin_e2m1(x, t):
    best, bd = 0, None
    for i, v in enumerate(E2M1):
        d = abs(ROUND[t](x - v))
        if bd is None or d < bd:
            best, bd = i, d
    return best


def ceil_log2(s):
    m, ex = math.frexp(s)
    return ex - 1 if m == 0.5 else ex


def emulate_mx(grp, t, fp8, rule):
    """MLX CPU mxfp4/mxfp8 group: rule 'rint' = FORMATS.md §3.2 (e = rint(fl_T(log2 s))),
    rule 'ceil' = smallest power of two >= s. s = fl_T(amax / maxval); s == 0 gives e = 0."""
    amax = max(abs(v) for v in grp)
    s = ROUND[t](amax / (448.0 if fp8 else 6.0))
    if s == 0:
        e = 0
    elif rule == "ceil":
        e = ceil_log2(s)
    else:
        e = int(round(ROUND[t](F32(math.log2(s)))))
    p2 = ROUND[t](2.0 ** e)
    codes = []
    for v in grp:
        x = ROUND[t](v / p2)
        codes.append(e4m3_rne(x) if fp8 else argmin_e2m1(x, t))
    return codes, (e + 127) & 0xFF


def emulate_nv(grp, t, g):
    """MLX CPU nvfp4 group (FORMATS.md §3.3)."""
    enc = F32(2688.0 / g) if g is not None else 1.0
    amax = max(abs(v) for v in grp)
    s_t = ROUND[t](amax / 6.0)
    sb = e4m3_rne(F32(s_t * enc))
    sv = e4m3_value(sb)
    codes = []
    for v in grp:
        if sv == 0:
            codes.append(0)
            continue
        x = F32(ROUND[t](v / sv) * enc)
        codes.append(argmin_e2m1(x, "float32"))  # x is float32 (times enc) for every T
    return codes, sb


def emulate_affine(grp, bits):
    """FORMATS.md §2.1 (MLX's CPU kernel), float32 arithmetic."""
    n_bins = float((1 << bits) - 1)
    eps = F32(1e-7)
    w_min, w_max = min(grp), max(grp)
    mask = abs(w_min) > abs(w_max)
    scale = F32(F32(w_max - w_min) / n_bins)
    scale = eps if scale < eps else scale
    scale = scale if mask else -scale
    edge = w_min if mask else w_max
    q0 = float(round(F32(edge / scale)))
    bias = 0.0
    if q0 != 0.0:
        scale = F32(edge / q0)
        bias = edge
    codes = []
    for v in grp:
        q = float(round(F32(F32(v - bias) / scale)))
        q = min(max(q, 0.0), n_bins)
        codes.append(int(q))
    return codes, scale, bias


def pack(codes, bits):
    words, acc, nb = [], 0, 0
    for c in codes:
        acc |= c << nb
        nb += bits
        while nb >= 32:
            words.append(acc & 0xFFFFFFFF)
            acc >>= 32
            nb -= 32
    assert nb == 0
    return words


# ---- input rows ------------------------------------------------------------------------


def signed(rng, v):
    return -v if rng.random() < 0.5 else v


def rows_for(mode, bits, gs, dt, rng):
    """ROWS rows of K doubles (rounded to dt later by MLX's astype, RNE)."""
    fp16 = dt == "float16"
    lo_exp, hi_exp = (-8, 8) if fp16 else (-12, 12)
    ngroups = K // gs
    rows = []
    # 0: plain normal
    rows.append([rng.gauss(0.0, 1.0) for _ in range(K)])
    # 1: normal, a different power-of-two-ish scale per group
    r = []
    for _ in range(ngroups):
        sc = 2.0 ** rng.uniform(lo_exp, hi_exp)
        r += [rng.gauss(0.0, 1.0) * sc for _ in range(gs)]
    rows.append(r)
    if mode == "affine":
        n_bins = (1 << bits) - 1
        # 2: ties: multiples of step/2 with min 0 and max n_bins*step (scale = -step, codes
        #    fall on half-integers), then the mirrored negative group (mask true).
        r = []
        for g in range(ngroups):
            step = 2.0 ** rng.randint(-4, 2)
            sgn = 1.0 if g % 2 == 0 else -1.0
            grp = [sgn * step * 0.5 * rng.randint(0, 2 * n_bins) for _ in range(gs)]
            grp[0], grp[1] = 0.0, sgn * n_bins * step
            rng.shuffle(grp)
            r += grp
        rows.append(r)
        # 3: special groups: zero, all-equal, all-negative, all-positive, |min| == |max|,
        #    |min| just above |max|, the FORMATS.md §2.4 progression
        r = []
        for g in range(ngroups):
            kind = g % 7
            if kind == 0:
                grp = [0.0] * gs
            elif kind == 1:
                grp = [rng.choice([0.3, -1.7, 1e-3, 4.0, -0.0625, 1e-6])] * gs
            elif kind == 2:
                grp = [rng.uniform(-2.0, -1.0) for _ in range(gs)]
                grp[0], grp[1] = -2.0, -1.0
            elif kind == 3:
                grp = [rng.uniform(0.5, 3.0) for _ in range(gs)]
            elif kind == 4:
                grp = [rng.uniform(-1.5, 1.5) for _ in range(gs)]
                grp[2], grp[3] = 1.5, -1.5
            elif kind == 5:
                grp = [rng.uniform(-1.0, 1.0) for _ in range(gs)]
                grp[4], grp[5] = 1.0, -1.0078125
            else:
                grp = [(i - 10) / 8.0 for i in range(gs)]
            r += grp
        rows.append(r)
        # 4: tiny groups: eps-dominated (q0 == 0) and small ranges
        r = []
        for g in range(ngroups):
            if fp16:
                sc = 2.0 ** rng.choice([-24, -22, -20, -16])
            else:
                sc = rng.choice([1e-8, 3e-8, 1e-7, 1e-6, 2.0 ** -40])
            r += [rng.uniform(-1.0, 1.0) * sc for _ in range(gs)]
        rows.append(r)
        # 5: large values
        big = 1000.0 if fp16 else 1e20
        rows.append([rng.gauss(0.0, 1.0) * big for _ in range(K)])
    else:
        fp8 = mode == "mxfp8"
        emax_v = 448.0 if fp8 else 6.0
        if fp8:
            mids = [(E4M3_POS[c] + E4M3_POS[c + 1]) / 2 for c in range(0x7E)]
            ties = mids + E4M3_POS
        else:
            ties = [0.25, 0.75, 1.25, 1.75, 2.5, 3.5, 5.0, 0.5, 1.0, 3.0, 0.0, 0.1, 0.2]
        # 2: element ties: amax = maxval * 2^e exactly (the scale is 2^e under every rule), the
        #    other elements on rounding ties (and -0, small negatives), times 2^e
        r = []
        for g in range(ngroups):
            e = rng.randint(-6, 6)
            grp = [signed(rng, rng.choice(ties)) * 2.0 ** e for _ in range(gs)]
            grp[0] = signed(rng, emax_v) * 2.0 ** e
            grp[1] = -0.0
            grp[2] = -0.1 * 2.0 ** e
            r += grp
        rows.append(r)
        # 3: the FORMATS.md §3.7 E2M1 tie vector and amax table, zero groups, powers of two
        r = []
        amaxes = [5.0, 6.0, 7.0, 8.4, 34.0, 0.1, 0.0, 2.0, 0.25, 4096.0 if not fp16 else 512.0]
        for g in range(ngroups):
            if g == 0 and not fp8:
                grp = [6, 0.75, -0.25, 1.75, -3.5, 5, 0.5, -6] + [0.0] * (gs - 8)
            else:
                a = amaxes[g % len(amaxes)] * (64.0 if fp8 else 1.0)
                grp = [rng.uniform(-a, a) for _ in range(gs)]
                grp[rng.randrange(gs)] = signed(rng, a)
            r += grp
        rows.append(r)
        # 4: exponent-rule boundaries: amax/maxval just above / below a power of two, and
        #    at the geometric midpoint 2^(k+1/2) (where rounding and ceiling rules differ)
        r = []
        for g in range(ngroups):
            k = rng.randint(-5, 5)
            f = rng.choice([1.0 + 2.0 ** -10, 1.0 - 2.0 ** -10, 2.0 ** 0.5, 1.0 + 2.0 ** -6,
                            1.0 - 2.0 ** -6, 1.5])
            a = emax_v * 2.0 ** k * f
            grp = [rng.uniform(-a, a) for _ in range(gs)]
            grp[rng.randrange(gs)] = signed(rng, a)
            r += grp
        rows.append(r)
        # 5: tiny values (float16: subnormals; others: far below 1 but above the wrap range)
        r = []
        for g in range(ngroups):
            sc = 2.0 ** (rng.randint(-24, -14) if fp16 else rng.randint(-110, -20))
            r += [rng.gauss(0.0, 1.0) * sc for _ in range(gs)]
        rows.append(r)
        # 6: large values; for nvfp4 the scale saturates at 448 and w/448 reaches 2^30, where
        #    the argmin's float32 differences tie (bf16/f32 only; float16 stays below 65504)
        r = []
        for g in range(ngroups):
            if fp16:
                sc = 2.0 ** rng.randint(8, 13)
            else:
                sc = 2.0 ** rng.randint(10, 40) * (448.0 if mode == "nvfp4" else 1.0)
            grp = [rng.gauss(0.0, 1.0) * sc for _ in range(gs)]
            if mode == "nvfp4" and not fp16:
                grp[0] = 4096.0 * 448.0
                grp[1] = -(2.0 ** 24) * 448.0
            r += [max(min(v, 60000.0), -60000.0) if fp16 else v for v in grp]
        rows.append(r)
    # 7: more special groups
    r = []
    for g in range(ngroups):
        kind = g % 6
        if mode == "affine":
            if kind == 0:  # powers of two at both ends
                a, c = 2.0 ** rng.randint(-6, 6), 2.0 ** rng.randint(-6, 6)
                grp = [rng.uniform(-c, a) for _ in range(gs)]
                grp[0], grp[1] = a, -c
            elif kind == 1:  # a few large values among small ones
                grp = [rng.gauss(0.0, 1e-3) for _ in range(gs)]
                grp[rng.randrange(gs)] = signed(rng, 50.0)
            elif kind == 2:  # all negative with the max near 0
                grp = [-rng.uniform(0.0, 1.0) for _ in range(gs)]
                grp[0] = -1e-4
            elif kind == 3:  # all equal negative
                grp = [-rng.choice([0.5, 3.25, 1e-2])] * gs
            elif kind == 4:  # signed zeros and one value
                grp = [-0.0] * gs
                grp[rng.randrange(gs)] = signed(rng, 0.75)
            else:  # an arithmetic progression over [-1, 1]
                grp = [-1.0 + 2.0 * i / (gs - 1) for i in range(gs)]
        else:
            fp8 = mode == "mxfp8"
            e = rng.randint(-6, 6)
            if kind == 0:  # all zeros, some negative
                grp = [rng.choice([0.0, -0.0]) for _ in range(gs)]
            elif kind == 1:  # all equal
                grp = [signed(rng, rng.choice([1.0, 3.0, 0.3, 5.5])) * 2.0 ** e] * gs
            elif kind == 2:  # all negative
                grp = [-rng.uniform(1.0, 2.0) * 2.0 ** e for _ in range(gs)]
            elif kind == 3:  # amax an exact power of two
                grp = [rng.uniform(-1.0, 1.0) * 2.0 ** e for _ in range(gs)]
                grp[rng.randrange(gs)] = signed(rng, 2.0 ** e)
            elif kind == 4:  # one element, the rest zero
                grp = [0.0] * gs
                grp[rng.randrange(gs)] = signed(rng, rng.uniform(0.1, 500.0 if fp8 else 10.0))
            else:  # small negatives that round to zero
                grp = [-rng.uniform(0.0, 0.2) * 2.0 ** e for _ in range(gs)]
                grp[0] = (448.0 if fp8 else 6.0) * 2.0 ** e
        r += grp
    rows.append(r)
    # remaining rows: normal with a random overall magnitude
    while len(rows) < ROWS:
        sc = 2.0 ** rng.uniform(lo_exp, hi_exp)
        rows.append([rng.gauss(0.0, 1.0) * sc for _ in range(K)])
    return rows[:ROWS]


# ---- MLX I/O -------------------------------------------------------------------------------


def raw(a):
    mx.eval(a)
    return bytes(memoryview(a))


def values(a, dt):
    """The exact values of an MLX array as doubles (through float32, exact for all dtypes)."""
    b = raw(a.astype(mx.float32))
    return list(struct.unpack("<%df" % (len(b) // 4), b))


def u32_list(a):
    b = raw(a)
    return list(struct.unpack("<%dI" % (len(b) // 4), b))


def u8_list(a):
    return list(raw(a))


# ---- cases ---------------------------------------------------------------------------------


def cases():
    for dt in ("float32", "float16", "bfloat16"):
        for bits in (2, 3, 4, 5, 6, 8):
            for gs in (32, 64, 128):
                yield ("affine", bits, gs, dt, False)
        yield ("mxfp4", 4, 32, dt, False)
        yield ("nvfp4", 4, 16, dt, False)
        yield ("nvfp4", 4, 16, dt, True)
        yield ("mxfp8", 8, 32, dt, False)


def main():
    mx.set_default_device(mx.cpu)
    os.makedirs(OUT_DIR, exist_ok=True)
    blob = bytearray()
    index = []
    notes = {}
    for mode, bits, gs, dt, with_g in cases():
        name = "%s_b%d_g%d_%s%s" % (mode, bits, gs, dt, "_gscale" if with_g else "")
        rng = random.Random(SEED ^ zlib.crc32(name.replace("_gscale", "").encode()))
        rows = rows_for(mode, bits, gs, dt, rng)
        w = mx.array(rows, dtype=mx.float32).astype(DTYPES[dt])
        wv = values(w, dt)
        assert all(math.isfinite(v) for v in wv), name
        gscale = None
        kw = {}
        if with_g:
            gscale = F32(max(abs(v) for v in wv))  # as MLX's tests: g = max|w|
            kw["global_scale"] = mx.array(gscale, dtype=mx.float32)
        if mode == "affine":
            q, s, b = mx.quantize(w, group_size=gs, bits=bits, mode="affine", stream=mx.cpu)
            deq = mx.dequantize(q, s, b, group_size=gs, bits=bits, mode="affine", stream=mx.cpu)
            assert deq.dtype == DTYPES[dt]
            sections = [raw(w), raw(q), raw(s), raw(b), raw(deq)]
            deq_dt, deq2_dt = dt, "-"
        else:
            q, s = mx.quantize(w, group_size=gs, bits=bits, mode=mode, stream=mx.cpu, **kw)
            if with_g:
                deq = mx.dequantize(q, s, group_size=gs, bits=bits, mode=mode, stream=mx.cpu,
                                    dtype=mx.float32, **kw)
                assert deq.dtype == mx.float32
                sections = [raw(w), raw(q), raw(s), raw(deq)]
                deq_dt, deq2_dt = "float32", "-"
            else:
                deq = mx.dequantize(q, s, group_size=gs, bits=bits, mode=mode, stream=mx.cpu,
                                    dtype=mx.float32)
                deq2 = mx.dequantize(q, s, group_size=gs, bits=bits, mode=mode, stream=mx.cpu,
                                     dtype=DTYPES[dt])
                # Without a global scale MLX's result is the exact product (FORMATS.md §4.2);
                # check that the T output is the float32 output rounded once.
                d32, dT = values(deq, "float32"), values(deq2, dt)
                assert all(ROUND[dt](a) == c or (a != a and c != c) for a, c in zip(d32, dT)), name
                sections = [raw(w), raw(q), raw(s), raw(deq), raw(deq2)]
                deq_dt, deq2_dt = "float32", dt
        # ---- provenance: compare MLX with the FORMATS.md emulations ----
        qw, sc = u32_list(q), (u8_list(s) if mode != "affine" else None)
        wpr = K * bits // 32
        bad = {}
        for r in range(ROWS):
            rv = wv[r * K:(r + 1) * K]
            for gi in range(K // gs):
                grp = rv[gi * gs:(gi + 1) * gs]
                if mode == "affine":
                    rules = {"formats_2.1": lambda: emulate_affine(grp, bits)[0]}
                elif mode == "nvfp4":
                    rules = {"formats_3.3": lambda: emulate_nv(grp, dt, gscale)}
                else:
                    a = ROUND[dt](max(abs(v) for v in grp) / (448.0 if bits == 8 else 6.0))
                    assert a == 0 or a >= 2.0 ** -127, (name, "E8M0 wrap range", a)
                    rules = {rule: (lambda rule=rule: emulate_mx(grp, dt, bits == 8, rule))
                             for rule in ("rint", "ceil")}
                for rule, fn in rules.items():
                    res = fn()
                    codes, sbyte = (res, None) if mode == "affine" else res
                    words = pack(codes, bits)
                    want = qw[r * wpr + gi * gs * bits // 32:r * wpr + (gi + 1) * gs * bits // 32]
                    ok = words == want
                    if sbyte is not None:
                        ok = ok and sc[r * (K // gs) + gi] == sbyte
                    bad.setdefault(rule, 0)
                    bad[rule] += 0 if ok else 1
        # ---- provenance: MLX's dequantize against FORMATS.md §4 ----
        dv = values(deq, deq_dt)
        sv = values(s, dt) if mode == "affine" else None
        bv = values(b, dt) if mode == "affine" else None
        nbad = 0
        for r in range(ROWS):
            for i in range(K):
                c = (qw[r * wpr + i * bits // 32] >> (i * bits % 32)) | (
                    (qw[r * wpr + i * bits // 32 + 1] << (32 - i * bits % 32))
                    if i * bits % 32 + bits > 32 else 0)
                c &= (1 << bits) - 1
                gi = r * (K // gs) + i // gs
                if mode == "affine":
                    want = ROUND[dt](ROUND[dt](c * sv[gi]) + bv[gi])
                else:
                    ev = E2M1[c] if bits == 4 else e4m3_value(c)
                    scv = e4m3_value(sc[gi]) if mode == "nvfp4" else 2.0 ** (sc[gi] - 127)
                    if with_g:
                        want = F32(ev * F32(scv * F32(gscale / 2688.0)))
                    else:
                        want = F32(ev * scv)
                got = dv[r * K + i]
                if not (got == want and math.copysign(1, got) == math.copysign(1, want)):
                    nbad += 1
        bad["dequant_4"] = nbad
        notes[name] = bad
        gtxt = ("%08x" % struct.unpack("<I", struct.pack("<f", gscale))[0]) if with_g else "-"
        index.append("%s %s %d %d %s %d %d %s %s %s %d" % (
            name, mode, bits, gs, dt, ROWS, K, gtxt, deq_dt, deq2_dt, len(blob)))
        for sec in sections:
            blob += sec
    with open(os.path.join(OUT_DIR, "mlx_golden.bin"), "wb") as f:
        f.write(blob)
    groups = ROWS * K
    with open(os.path.join(OUT_DIR, "mlx_golden.idx"), "w") as f:
        f.write("# qmv golden data: mx.quantize / mx.dequantize on MLX's CPU stream\n")
        f.write("# generator: tests/gen/make_golden.py (seed %d), format: tests/data/README.md\n" % SEED)
        f.write("# mlx %s, python %s\n" % (mx.__version__, sys.version.split()[0]))
        f.write("# groups where MLX differs from the FORMATS.md emulations (per case, rule=count):\n")
        for name, bad in notes.items():
            f.write("#   %s %s\n" % (name, " ".join("%s=%d" % kv for kv in sorted(bad.items()))))
        f.write("# name mode bits group_size w_dtype rows k global_scale_f32_hex deq_dtype "
                "deq2_dtype offset\n")
        for line in index:
            f.write(line + "\n")
        f.write("end %d\n" % len(blob))
    print("wrote %d bytes, %d cases to %s" % (len(blob), len(index), OUT_DIR))


if __name__ == "__main__":
    main()
