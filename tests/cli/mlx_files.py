#!/usr/bin/env python3
"""mlx_files.py - the qmv tool on MLX's own files, and MLX (and the `safetensors` package) on
qmv's files (label mlx).

    python3 tests/cli/mlx_files.py /path/to/qmv

For affine (every bits x group size), mxfp4, nvfp4 and mxfp8, with float32, float16 and
bfloat16 weights:
  1. mx.quantize + mx.save_safetensors (keys NAME.weight / .scales / .biases, no qmv metadata):
     - `qmv dequantize` (format from the shapes, or --bits/--group-size for affine) equals
       mx.dequantize bit for bit;
     - `qmv matvec` output passes `qmv verify --exact`, and MLX's own mx.quantized_matmul output
       passes `qmv verify --bound` and `--stat` with `--accum <x dtype>` (MLX accumulates in the
       input dtype);
     - `qmv info` recognises the fp modes from the shapes.
  2. `qmv quantize --profile mlx-cpu` on the same weights writes the same packed codes, scales
     and biases as mx.quantize, and mx.load reads qmv's file back (and `safetensors.numpy`
     when that package is importable), tensors equal to what qmv wrote.
Exit status: 0 passed, 1 a check failed, 77 skipped (numpy or MLX not importable).
"""
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile

SKIP = 77


def skip(why):
    print(f"mlx_files: SKIPPED: {why} (pip install 'mlx[cpu]' numpy to run it)", flush=True)
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
try:
    import safetensors.numpy as stnp
except Exception:  # noqa: BLE001 - optional
    stnp = None

QMV = os.path.abspath(sys.argv[1]) if len(sys.argv) > 1 else "qmv"
failures = []
MXDT = {"float32": mx.float32, "float16": mx.float16, "bfloat16": mx.bfloat16}


def check(cond, what):
    if not cond:
        failures.append(what)
        print(f"FAIL: {what}", flush=True)
    return cond


def run(*args):
    return subprocess.run([QMV, *map(str, args)], capture_output=True, text=True)


def bits_of(a):
    """Raw bits of an MLX array as a numpy array (numpy has no bfloat16)."""
    if a.dtype == mx.bfloat16 or a.dtype == mx.float16:
        return np.array(a.view(mx.uint16))
    if a.dtype == mx.float32:
        return np.array(a.view(mx.uint32))
    return np.array(a)


def npy_bits(path):
    a = np.load(path)
    return a.view(np.uint16) if a.dtype.itemsize == 2 else a.view(np.uint32)


def save_x(path, x):
    """x as .npy: bfloat16 as uint16 bits (what qmv reads as bfloat16)."""
    np.save(path, bits_of(x) if x.dtype == mx.bfloat16 else np.array(x))


def main():
    tmp = tempfile.mkdtemp(prefix="qmv_mlx_")
    os.chdir(tmp)
    mx.random.seed(11)
    N, K, M = 96, 512, 3
    cases = [("affine", b, g) for b in (1, 2, 3, 4, 5, 6, 8) for g in (32, 64, 128)]
    cases += [("mxfp4", 4, 32), ("nvfp4", 4, 16), ("mxfp8", 8, 32)]
    n_cases = 0
    for mode, bits, g in cases:
        for dt in ("float32", "float16", "bfloat16"):
            if mode == "affine" and dt != "float16" and (bits, g) not in ((4, 64), (8, 32), (3, 128)):
                continue  # every affine combination in float16, a few in the other dtypes
            n_cases += 1
            tag = f"{mode}-{bits}-g{g}-{dt}"
            w = (mx.random.normal((N, K)) * 0.5).astype(MXDT[dt])
            kw = {"mode": mode} if mode != "affine" else {"mode": mode, "bits": bits, "group_size": g}
            r = mx.quantize(w, **kw)
            wq, sc = r[0], r[1]
            bi = r[2] if len(r) > 2 and r[2] is not None else None
            tensors = {"layer.weight": wq, "layer.scales": sc}
            if bi is not None:
                tensors["layer.biases"] = bi
            mx.save_safetensors("mlx.safetensors", tensors)
            flags = ["--bits", bits, "--group-size", g] if mode == "affine" else []

            # info recognises fp modes from the shapes alone
            p = run("info", "mlx.safetensors", *flags)
            check(p.returncode == 0 and f"{mode} {bits}-bit group {g}" in p.stdout,
                  f"{tag}: info: {p.stdout} {p.stderr}")

            # dequantize == mx.dequantize, bit for bit, in w's dtype
            p = run("dequantize", "--force", "--dtype", dt, *flags, "mlx.safetensors", "d.npy")
            if check(p.returncode == 0, f"{tag}: dequantize: {p.stderr}"):
                ref = mx.dequantize(wq, sc, bi, dtype=MXDT[dt], **kw)
                check(np.array_equal(npy_bits("d.npy"), bits_of(ref)), f"{tag}: dequantize bits differ from MLX")

            # matvec: exact against qmv's canonical result; MLX's result within the bound
            x = mx.random.normal((M, K)).astype(MXDT[dt])
            save_x("x.npy", x)
            p = run("matvec", "--force", "--weights", "mlx.safetensors", *flags, "--x", "x.npy", "--out", "y.npy")
            if check(p.returncode == 0, f"{tag}: matvec: {p.stderr}"):
                p = run("verify", "--weights", "mlx.safetensors", *flags, "--x", "x.npy", "--y", "y.npy")
                check(p.returncode == 0 and "PASS" in p.stdout, f"{tag}: verify --exact: {p.stdout}{p.stderr}")
            ym = mx.quantized_matmul(x, wq, sc, bi, transpose=True, **kw)
            save_x("ymlx.npy", ym)
            acc = {"float32": "f32", "float16": "f16", "bfloat16": "bf16"}[dt]
            # honest: within the rigorous and the statistical bound (low precision accumulation
            # may leave elements without detection power, hence --allow-weak)
            for check_mode in ("--bound", "--stat"):
                p = run("verify", check_mode, "--allow-weak", "--accum", acc, "--weights", "mlx.safetensors",
                        *flags, "--x", "x.npy", "--y", "ymlx.npy")
                check(p.returncode == 0 and "PASS" in p.stdout,
                      f"{tag}: MLX's quantized_matmul within the {check_mode} --accum {acc} bound: {p.stdout}{p.stderr}")

            # qmv quantize == mx.quantize; MLX loads qmv's file
            save_x("w.npy", w)
            qargs = ["--bits", bits, "--group-size", g] if mode == "affine" else []
            p = run("quantize", "--force", "--mode", mode, *qargs, "--name", "layer", "w.npy", "q.safetensors")
            if not check(p.returncode == 0, f"{tag}: quantize: {p.stderr}"):
                continue
            loaded = mx.load("q.safetensors")
            check(set(loaded) == set(tensors), f"{tag}: mx.load keys {sorted(loaded)}")
            for k, ref in tensors.items():
                if k in loaded:
                    check(loaded[k].dtype == ref.dtype and loaded[k].shape == ref.shape and
                          np.array_equal(bits_of(loaded[k]), bits_of(ref)),
                          f"{tag}: {k} of qmv quantize differs from mx.quantize")
            if stnp is not None and dt != "bfloat16":  # numpy cannot hold bfloat16
                st = stnp.load_file("q.safetensors")
                check(all(np.array_equal(st[k], np.array(loaded[k])) for k in loaded),
                      f"{tag}: safetensors.numpy reads qmv's file differently")

    # a header qmv wrote is one the reference parser accepts with its metadata intact
    b = open("q.safetensors", "rb").read()
    n = struct.unpack("<Q", b[:8])[0]
    meta = json.loads(b[8:8 + n])["__metadata__"]
    check(meta.get("qmv.mode") == "mxfp8" and meta.get("format") == "mlx", f"metadata {meta}")
    os.chdir("/")
    shutil.rmtree(tmp, ignore_errors=True)
    if failures:
        print(f"mlx_files: {len(failures)} of the checks over {n_cases} cases FAILED")
        return 1
    print(f"mlx_files: {n_cases} cases passed (MLX {mx.__version__}"
          f"{', safetensors ' + __import__('safetensors').__version__ if stnp else ', safetensors package not importable'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
