#!/usr/bin/env python3
"""verify_power.py - what `qmv verify --stat` and `--bound` can see (label mlx).

    python3 tests/mlx/verify_power.py /path/to/qmv [--trials T] [--table]

W is N(0, 0.02^2) float32 quantized by mx.quantize, x ~ N(0, 1); each row of W is one trial.
Requirements checked (docs/VERIFY.md):
  - honest outputs pass --stat: numpy's float32 matmul of the dequantized weights (an order
    other than qmv's) for K in {4096, 16384, 32768}, and MLX's CPU quantized_matmul with float16
    and bfloat16 x (which accumulates in that dtype) with --accum f16 / bf16;
  - power: one 4-bit code moved one step at the position of the largest |x| fails --stat in
    >= 95 % of the trials at every K.
With --table it also prints the detection rates of other faults for --bound and --stat (the
figures of docs/VERIFY.md). Exit status: 0 passed, 1 a check failed, 77 skipped.
"""
import os
import subprocess
import sys
import tempfile

SKIP = 77


def skip(why):
    print(f"verify_power: SKIPPED: {why} (pip install 'mlx[cpu]' numpy to run it)", flush=True)
    sys.exit(SKIP)


try:
    import numpy as np
except Exception as e:  # noqa: BLE001
    skip(f"numpy cannot be imported ({e})")
try:
    import mlx.core as mx
    mx.eval(mx.array([1.0]) + 1)
except Exception as e:  # noqa: BLE001
    skip(f"MLX cannot be imported or run ({e})")

QMV = os.path.abspath(sys.argv[1]) if len(sys.argv) > 1 and not sys.argv[1].startswith("-") else "qmv"
TRIALS = int(sys.argv[sys.argv.index("--trials") + 1]) if "--trials" in sys.argv else 40
TABLE = "--table" in sys.argv
failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print(f"FAIL: {what}", flush=True)
    return cond


def verify(check_mode, accum, y, extra=()):
    """Runs qmv verify on w.safetensors / x.npy and y; returns (exit code, fail count, stdout)."""
    np.save("y.npy", y)
    p = subprocess.run([QMV, "verify", check_mode, "--accum", accum, *extra, "--weights", "w.safetensors",
                        "--bits", str(BITS), "--group-size", "64", "--x", "x.npy", "--y", "y.npy"],
                       capture_output=True, text=True)
    fails = 0
    for line in p.stdout.splitlines():
        if line.startswith("elements:"):
            fails = int(line.split()[3])
    return p.returncode, fails, p.stdout + p.stderr


def bf16_bits(a):
    return np.array(a.view(mx.uint16))


BITS = 4


def setup(K, bits, rng):
    global BITS
    BITS = bits
    w = mx.array(rng.normal(0, 0.02, (TRIALS, K)).astype(np.float32))
    wq, sc, bi = mx.quantize(w, group_size=64, bits=bits)
    mx.save_safetensors("w.safetensors", {"w.weight": wq, "w.scales": sc, "w.biases": bi})
    x = rng.normal(0, 1, (1, K)).astype(np.float32)
    np.save("x.npy", x)
    return x, np.array(wq), np.array(sc), np.array(bi)


def y_of(x, wq, sc, bi, bits):
    """numpy's float32 matmul of the dequantized weights."""
    d = np.array(mx.dequantize(mx.array(wq), mx.array(sc), mx.array(bi), group_size=64, bits=bits))
    return (x @ d.T).astype(np.float32)


def move_code(wq, row, i, bits):
    per = 32 // bits
    word, sh = i // per, (i % per) * bits
    mask = (1 << bits) - 1
    c = (int(wq[row, word]) >> sh) & mask
    c2 = c + 1 if c < mask else c - 1
    wq[row, word] = (int(wq[row, word]) & ~(mask << sh) & 0xFFFFFFFF) | (c2 << sh)


def code_at(wq, row, i, bits):
    per = 32 // bits
    return (int(wq[row, i // per]) >> ((i % per) * bits)) & ((1 << bits) - 1)


def set_code(wq, row, i, bits, c):
    per = 32 // bits
    sh = (i % per) * bits
    mask = (1 << bits) - 1
    wq[row, i // per] = (int(wq[row, i // per]) & ~(mask << sh) & 0xFFFFFFFF) | (c << sh)


def faulty(kind, x, wq, sc, bi, bits, rng):
    wq, sc, bi = wq.copy(), sc.copy(), bi.copy()
    K = x.shape[1]
    for r in range(TRIALS):
        if kind == "code at max|x|":
            move_code(wq, r, int(np.argmax(np.abs(x[0]))), bits)
        elif kind == "code at random":
            move_code(wq, r, int(rng.integers(K)), bits)
        elif kind == "scale +0.1%":
            g = int(rng.integers(K // 64))
            sc[r, g] = np.float32(sc[r, g] * np.float32(1.001))
        elif kind == "bias +0.1%":
            g = int(rng.integers(K // 64))
            bi[r, g] = np.float32(bi[r, g] * np.float32(1.001))
        elif kind == "two codes swapped":
            while True:
                i = int(rng.integers(K))
                j = i ^ 1
                a, b = code_at(wq, r, i, bits), code_at(wq, r, j, bits)
                if a != b:
                    set_code(wq, r, i, bits, b)
                    set_code(wq, r, j, bits, a)
                    break
    return y_of(x, wq, sc, bi, bits)


def main():
    tmp = tempfile.mkdtemp(prefix="qmv_power_")
    os.chdir(tmp)
    rng = np.random.default_rng(2026)
    kinds = ["code at max|x|", "code at random", "scale +0.1%", "bias +0.1%", "two codes swapped"]
    rows = []
    for K in (4096, 16384, 32768):
        for bits in ((4, 8) if TABLE else (4,)):
            x, wq, sc, bi = setup(K, bits, rng)
            y = y_of(x, wq, sc, bi, bits)
            rc, fails, out = verify("--stat", "f32", y)
            check(rc == 0 and fails == 0, f"K={K} {bits}-bit: honest numpy float32 output passes --stat: {out}")
            for kind in (kinds if TABLE else kinds[:1]):
                yf = faulty(kind, x, wq, sc, bi, bits, rng)
                rates = []
                for cm in (("--stat", "--bound") if TABLE else ("--stat",)):
                    rc, fails, out = verify(cm, "f32", yf, ("--allow-weak",))
                    rates.append(fails / TRIALS)
                    if cm == "--stat" and kind == kinds[0] and bits == 4:
                        check(fails >= 0.95 * TRIALS,
                              f"K={K}: a 4-bit code moved one step at max|x| fails --stat in {fails}/{TRIALS}")
                rows.append((K, bits, kind, rates))
        # MLX's CPU kernel with float16 / bfloat16 x accumulates in that dtype: honest at --stat
        x, wq, sc, bi = setup(K, 4, rng)
        for dt, acc in ((mx.float16, "f16"), (mx.bfloat16, "bf16")):
            xm = mx.array(x).astype(dt)
            ym = mx.quantized_matmul(xm, mx.array(wq), mx.array(sc).astype(dt), mx.array(bi).astype(dt),
                                     transpose=True, group_size=64, bits=4)
            if dt == mx.bfloat16:
                np.save("x.npy", bf16_bits(xm))
                yv = bf16_bits(ym)
            else:
                np.save("x.npy", np.array(xm))
                yv = np.array(ym)
            mx.save_safetensors("w.safetensors", {"w.weight": mx.array(wq), "w.scales": mx.array(sc).astype(dt),
                                                  "w.biases": mx.array(bi).astype(dt)})
            rc, fails, out = verify("--stat", acc, yv, ("--allow-weak",))
            check(rc == 0 and fails == 0, f"K={K}: MLX CPU output with {acc} x passes --stat --accum {acc}: {out}")
    for K, bits, kind, rates in rows:
        print(f"K={K:6d} affine {bits}-bit g64 {kind:20s} " +
              " ".join(f"{m} {100 * r:5.1f}%" for m, r in zip(("stat", "bound"), rates)), flush=True)
    if failures:
        print(f"verify_power: {len(failures)} check(s) FAILED")
        return 1
    print("verify_power: all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
