#!/usr/bin/env python3
"""mlx_cuda_orders.py - the orders "mlx-0.32.4-cuda-qmv" / "mlx-0.32.4-cuda-fp-qmv" against
MLX's CUDA quantized_matmul, bit for bit.

Needs an NVIDIA GPU and MLX's CUDA build (pip install mlx==0.32.4 mlx-cuda-13==0.32.4);
anywhere else it prints SKIPPED loudly and exits 77. It runs mx.quantized_matmul(x, w, scales,
biases, transpose=True) on the GPU stream and qmv_qmv_order() (tests/mlx/qmv_ctypes.py) on the
same random codes, scales, biases and x, for every shape that MLX 0.32.4 sends to its
matrix-vector kernels (docs/VERIFY.md, "Emulated orders"):

  * every mode: affine 2-6 and 8 bits x groups 32/64/128, mxfp4, nvfp4 (no global scale:
    quantized_matmul takes none), mxfp8; x float32, float16, bfloat16;
  * M = 1..7 with one batch item (qmv on sm_80/sm_90, fp_qmv for the fp modes on sm_100+),
    K > group size (so that sm_90's qmm_sm90 is never chosen), K up to 16384; plus M = 8 with K not a multiple of max(64, group) (affine group 32), which MLX
    also sends to qmv.

The order compared is chosen from the GPU's compute capability: major <= 9 -> cuda-qmv for
every mode; major >= 10 -> cuda-fp-qmv for the fp modes and cuda-qmv for affine. It prints,
per mode, x dtype and M, the outputs compared and the mismatches, and exits 0 only when
every output matches (NaN compared as a class), 1 on any mismatch, 2 on a harness error.

    python3 tests/mlx/mlx_cuda_orders.py [--lib libqmv.so] [--outputs N] [--seed S]
"""
import argparse
import sys
import time

import mlx_diff  # skips loudly (exit 77) when numpy or MLX cannot be imported
from mlx_diff import DT, add_lib_args, find_or_build_lib, mx, np, qmv_ctypes, skip
import mlx_orders
from mlx_orders import Tally, one_call


def gpu_major():
    """The GPU's compute capability major, or None when it cannot be told."""
    for call in (lambda: mx.device_info(mx.gpu), lambda: mx.cuda.device_info()):
        try:
            info = call()
            if "compute_capability_major" in info:
                return int(info["compute_capability_major"])
        except Exception:  # noqa: BLE001 - try the next source
            pass
    try:
        import subprocess
        out = subprocess.run(["nvidia-smi", "--query-gpu=compute_cap", "--format=csv,noheader"],
                             capture_output=True, text=True, check=True).stdout
        return int(out.split()[0].split(".")[0])
    except Exception:  # noqa: BLE001
        return None


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_lib_args(ap)
    ap.add_argument("--outputs", type=int, default=5_000,
                    help="outputs per mode, x dtype and M (default 5000)")
    ap.add_argument("--major", type=int, help="compute capability major (default: detect)")
    ap.add_argument("--seed", type=int, default=20261205)
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args()
    try:
        if not mx.is_available(mx.gpu):
            raise RuntimeError("this MLX has no usable GPU backend (no CUDA build, or no GPU)")
        mx.eval(mx.add(mx.array([1.0]), 1, stream=mx.gpu))
    except Exception as e:  # noqa: BLE001 - no GPU backend is a skip
        skip(f"MLX's GPU backend cannot run here ({type(e).__name__}: {e}); the CUDA orders "
             "were NOT checked",
             "It needs an NVIDIA GPU and MLX's CUDA build\n"
             "  (python3 -m pip install mlx==0.32.4 mlx-cuda-13==0.32.4).")
    major = args.major if args.major is not None else gpu_major()
    if major is None:
        print("mlx_cuda_orders: ERROR: cannot tell the GPU's compute capability: pass --major",
              file=sys.stderr)
        return 2
    t0 = time.time()
    try:
        lib = qmv_ctypes.Qmv(find_or_build_lib(args), 0)
    except Exception as e:  # noqa: BLE001
        print(f"mlx_cuda_orders: ERROR: cannot build or load the library: {e}", file=sys.stderr)
        return 2
    print(f"mlx_cuda_orders: MLX {mx.__version__} on the GPU (sm_{major}x), qmv "
          f"{lib.version()}; seed {args.seed}", flush=True)
    rng = np.random.default_rng(args.seed)
    affine = [(b, g) for b in (2, 3, 4, 5, 6, 8) for g in (32, 64, 128)]
    variants = [("affine", affine), ("mxfp4", [(4, 32)]), ("nvfp4", [(4, 16)]),
                ("mxfp8", [(8, 32)])]
    total_bad = 0
    print(f"{'order':24s} {'mode':7s} {'x dtype':9s} {'M':>2s} {'outputs':>9s} {'NaN':>5s} "
          f"{'mismatches':>10s}")
    try:
        for name, fmts in variants:
            order = ("mlx-0.32.4-cuda-fp-qmv" if major >= 10 and name != "affine"
                     else "mlx-0.32.4-cuda-qmv")
            for xdt in DT:
                sdt = xdt if name == "affine" else "float32"
                ms = list(range(1, 8)) + ([8] if name == "affine" else [])
                for m in ms:
                    t = Tally()
                    per_fmt = -(-args.outputs // len(fmts))
                    for bits, gs in fmts:
                        if m == 8 and gs != 32:
                            continue
                        done = 0
                        while done < per_fmt:
                            if m == 8:  # K % 64 != 0: no qmm kernel takes it, qmv does
                                k = 32 * int(rng.choice((3, 5, 7, 33, 129, 255)))
                            else:
                                k = gs * int(rng.integers(2, 16384 // gs + 1))
                            n = max(8, min(4096, -(-(per_fmt - done) // m)))
                            n = -(-n // 8) * 8
                            ref, _ = one_call(lib, rng, t, name, bits, gs, xdt, sdt, m, n, k,
                                              args.verbose, order=order, stream=mx.gpu)
                            done += ref.size
                    total_bad += t.mismatches
                    print(f"{order:24s} {name:7s} {xdt:9s} {m:2d} {t.outputs:9,d} "
                          f"{t.nans:5d} {t.mismatches:10d}", flush=True)
    except Exception as e:  # noqa: BLE001
        import traceback
        traceback.print_exc()
        print(f"mlx_cuda_orders: ERROR: {type(e).__name__}: {e}", file=sys.stderr)
        return 2
    print(f"mlx_cuda_orders: {'PASS' if total_bad == 0 else 'FAIL'}: {total_bad} mismatches, "
          f"{time.time() - t0:.1f} s")
    return 0 if total_bad == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
