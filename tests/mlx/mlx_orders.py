#!/usr/bin/env python3
"""mlx_orders.py - the emulated order "mlx-0.32.4-cpu" against MLX's CPU quantized_matmul.

Runs mx.quantized_matmul(x, w, scales, biases, transpose=True) on MLX's CPU stream and
qmv_qmv_order("mlx-0.32.4-cpu") (through tests/mlx/qmv_ctypes.py) on the same random codes,
scales, biases and x, and requires equal bits for every output: per mode (affine with bits
1-6 and 8 and group sizes 32/64/128, mxfp4, nvfp4, mxfp8) and x dtype (float32, float16,
bfloat16) at least --min-outputs outputs (default 100,000), with M = 1..8 and K up to 32768.
Affine also runs with scales in a dtype other than x's (MLX then computes in float32).
Finally it flips one ulp of one MLX output and requires the comparison to report exactly that
one mismatch (the check can fail).

Codes are random words and scales random in a range that keeps every sum finite in float16;
mxfp8 codes and nvfp4 scales avoid the E4M3 NaN bytes 0x7F/0xFF there (one in a group makes
the output NaN). A separate "special" run per fp mode draws every byte, NaN codes and E8M0
0xFF (+Inf in MLX's CPU decoder) included; NaN outputs compare equal to any NaN (the order
writes the canonical quiet NaN, MLX's payloads are not emulated) and are counted.

    python3 tests/mlx/mlx_orders.py [--lib libqmv.so] [--min-outputs N] [--seed S]

Without --lib (or $QMV_LIB) it builds the shared library as tests/mlx/mlx_diff.py does.
Exit status: 0 every output matches; 1 a mismatch; 2 a harness error; 77 SKIPPED (numpy or
MLX missing, printed loudly).
"""
import argparse
import sys
import time

import mlx_diff  # skips loudly (exit 77) when numpy or MLX cannot be imported
from mlx_diff import DT, find_or_build_lib, from_mx, np, mx, to_mx, qmv_ctypes

ORDER = "mlx-0.32.4-cpu"
KMAX = 32768


def rand_x(rng, m, k, dt):
    return mlx_diff.to_storage(rng.standard_normal((m, k)), dt)


def rand_affine_sb(rng, n, groups, sdt):
    s = rng.uniform(0.002, 0.08, (n, groups)) * rng.choice((-1.0, 1.0), (n, groups))
    b = rng.standard_normal((n, groups)) * 0.3
    return mlx_diff.to_storage(s, sdt), mlx_diff.to_storage(b, sdt)


def rand_fp_scales(rng, mode, n, groups, special):
    if special:
        return rng.integers(0, 256, (n, groups), dtype=np.uint8)
    if mode == "nvfp4":
        return rng.integers(0x08, 0x7F, (n, groups), dtype=np.uint8)  # E4M3 2^-6 .. 448
    return rng.integers(118, 131, (n, groups), dtype=np.uint8)  # E8M0 2^-9 .. 2^3


def rand_codes(rng, mode, n, words, special):
    packed = rng.integers(0, 2**32, (n, words), dtype=np.uint64).astype(np.uint32)
    if mode == "mxfp8" and not special:
        b = packed.view(np.uint8)
        b[(b & 0x7F) == 0x7F] ^= 1  # no E4M3 NaN codes
    return packed


def nan_mask(a, dt):
    if dt == "float32":
        return (a & np.uint32(0x7FFFFFFF)) > np.uint32(0x7F800000)
    if dt == "float16":
        return (a & np.uint16(0x7FFF)) > np.uint16(0x7C00)
    return (a & np.uint16(0x7FFF)) > np.uint16(0x7F80)


class Tally:
    def __init__(self):
        self.outputs = 0
        self.mismatches = 0
        self.calls = 0
        self.maxk = 0
        self.nans = 0


def one_call(lib, rng, tally, mode, bits, gs, xdt, sdt, m, n, k, verbose, special=False,
             order=ORDER, stream=None):
    """One mx.quantized_matmul on `stream` (default the CPU) against `order`, counted in
    tally; returns (MLX's bits, the order's bits)."""
    words = k * bits // 32
    packed = rand_codes(rng, mode, n, words, special)
    groups = k // gs
    x = rand_x(rng, m, k, xdt)
    if mode == "affine":
        scales, biases = rand_affine_sb(rng, n, groups, sdt)
        mb = to_mx(biases, sdt)
        ms = to_mx(scales, sdt)
        ydt = xdt if sdt == xdt else "float32"
    else:
        scales, biases, mb = rand_fp_scales(rng, mode, n, groups, special), None, None
        ms = mx.array(scales)
        ydt = xdt
    y_mx = mx.quantized_matmul(to_mx(x, xdt), mx.array(packed), ms, mb, transpose=True,
                               group_size=gs, bits=bits, mode=mode,
                               stream=mx.cpu if stream is None else stream)
    mx.eval(y_mx)
    assert mlx_diff.mx_dtype_name(y_mx.dtype) == ydt, (y_mx.dtype, ydt)
    ref = mlx_diff.bits_of(from_mx(y_mx))
    got = mlx_diff.bits_of(lib.qmv_order(order, mode, bits, gs, sdt, packed, scales, biases, k,
                                         x, xdt, ydt))
    both_nan = nan_mask(ref, ydt) & nan_mask(got, ydt)
    differ = (ref != got) & ~both_nan
    bad = int(np.count_nonzero(differ))
    tally.nans += int(np.count_nonzero(both_nan))
    tally.outputs += ref.size
    tally.mismatches += bad
    tally.calls += 1
    tally.maxk = max(tally.maxk, k)
    if bad or verbose:
        print(f"  {mode} bits {bits} gs {gs} x {xdt} scales {sdt}: m {m} n {n} k {k}: "
              f"{bad} of {ref.size} differ", flush=True)
        if bad:
            i = np.argwhere(differ)[0]
            print(f"    first at {tuple(i)}: MLX {ref[tuple(i)]:#x}, order {got[tuple(i)]:#x}")
    return ref, got


def run_mode(lib, rng, name, fmts, xdt, sdt, target, verbose, special=False):
    """Calls until `target` outputs: per format one long-K call, then moderate calls."""
    tally = Tally()
    mode = name
    per_fmt = -(-target // len(fmts))
    for bits, gs in fmts:
        done = 0
        # one call with K near the maximum (few rows: the cost is m * n * k)
        k = int(rng.integers(KMAX // gs // 2, KMAX // gs + 1)) * gs
        ref, _ = one_call(lib, rng, tally, mode, bits, gs, xdt, sdt, int(rng.integers(1, 9)),
                          32, k, verbose, special)
        done += ref.size
        while done < per_fmt:
            m = int(rng.integers(1, 9))
            k = int(rng.integers(1, 9)) * gs
            n = max(8, min(4096, -(-(per_fmt - done) // m)))
            ref, _ = one_call(lib, rng, tally, mode, bits, gs, xdt, sdt, m, n, k, verbose,
                              special)
            done += ref.size
    return tally


def flip_check(lib, rng):
    """One ulp changed in one MLX output must show as exactly one mismatch."""
    t = Tally()
    ref, got = one_call(lib, rng, t, "affine", 4, 64, "bfloat16", "bfloat16", 3, 64, 1024, False)
    if t.mismatches:
        return False
    flipped = ref.copy()
    flipped[1, 17] ^= 1
    return int(np.count_nonzero(flipped != got)) == 1


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    mlx_diff.add_lib_args(ap)
    ap.add_argument("--min-outputs", type=int, default=100_000,
                    help="outputs per mode and x dtype (default 100000)")
    ap.add_argument("--seed", type=int, default=20261204)
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args()
    t0 = time.time()
    try:
        lib = qmv_ctypes.Qmv(find_or_build_lib(args), 1)
        lib.order_index(ORDER)
    except Exception as e:  # noqa: BLE001 - a harness error is a failure, not a skip
        print(f"mlx_orders: ERROR: cannot build or load the library or its order: {e}",
              file=sys.stderr)
        return 2
    print(f"mlx_orders: MLX {mx.__version__} (CPU) against order {ORDER} of qmv "
          f"{lib.version()}; seed {args.seed}", flush=True)
    rng = np.random.default_rng(args.seed)
    affine = [(b, g) for b in (1, 2, 3, 4, 5, 6, 8) for g in (32, 64, 128)]
    variants = [("affine", affine), ("mxfp4", [(4, 32)]), ("nvfp4", [(4, 16)]),
                ("mxfp8", [(8, 32)])]
    total_bad = 0
    print(f"{'mode':7s} {'x dtype':9s} {'scales':9s} {'calls':>5s} {'outputs':>9s} "
          f"{'max K':>6s} {'NaN':>6s} {'mismatches':>10s}")
    try:
        runs = [(name, fmts, xdt, xdt if name == "affine" else "float32", args.min_outputs, 0)
                for name, fmts in variants for xdt in DT]
        # affine with scales in another dtype: MLX promotes and computes in float32
        runs += [("affine", [(4, 64), (3, 32), (8, 128)], "float16", "float32", 6000, 0),
                 ("affine", [(4, 64), (6, 64)], "bfloat16", "float16", 6000, 0),
                 ("affine", [(2, 128), (5, 32)], "float32", "bfloat16", 6000, 0)]
        # every code and scale byte, NaN and Inf decodes included
        runs += [(name, fmts, xdt, "float32", 3000, 1) for name, fmts in variants[1:]
                 for xdt in DT]
        for name, fmts, xdt, sdt, target, special in runs:
            t = run_mode(lib, rng, name, fmts, xdt, sdt, target, args.verbose, special)
            total_bad += t.mismatches
            if not special and t.outputs < target:
                print(f"mlx_orders: FAIL: only {t.outputs} outputs for {name} {xdt}")
                total_bad += 1
            shown = sdt if name == "affine" else ("special" if special else "uint8")
            print(f"{name:7s} {xdt:9s} {shown:9s} {t.calls:5d} {t.outputs:9,d} {t.maxk:6d} "
                  f"{t.nans:6d} {t.mismatches:10d}", flush=True)
        flip_ok = flip_check(lib, rng)
    except Exception as e:  # noqa: BLE001
        import traceback
        traceback.print_exc()
        print(f"mlx_orders: ERROR: {type(e).__name__}: {e}", file=sys.stderr)
        return 2
    print(f"mlx_orders: one-ulp flip of an MLX output {'detected' if flip_ok else 'MISSED'}")
    ok = total_bad == 0 and flip_ok
    print(f"mlx_orders: {'PASS' if ok else 'FAIL'}: {total_bad} mismatches, "
          f"{time.time() - t0:.1f} s")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
