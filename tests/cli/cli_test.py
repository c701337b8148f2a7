#!/usr/bin/env python3
"""cli_test.py - runs the built `qmv` binary on small files and checks stdout, stderr, exit
codes and output bytes. Pure Python (no numpy), so it runs wherever python3 does.

    python3 tests/cli/cli_test.py /path/to/qmv

Covers: --help everywhere, usage errors (exit 2), quantize in every mode (the safetensors file
parsed independently here: header, offsets, dtypes, shapes, metadata), info, matvec against
an independent float64 product of the dequantized matrix, dequantize to .npy and safetensors,
verify --exact catching a single flipped bit, verify --bound catching a perturbed output,
malformed and truncated inputs (file name and reason on stderr, no partial output left),
refusal to overwrite, --device cuda without a GPU, and a small bench run with --json.
Exit status: 0 all checks passed, 1 a check failed.
"""
import ast
import json
import math
import os
import random
import shutil
import struct
import subprocess
import sys
import tempfile

QMV = os.path.abspath(sys.argv[1]) if len(sys.argv) > 1 else "qmv"
failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print(f"FAIL: {what}", flush=True)
    return cond


def run(*args, code=None, what=None):
    p = subprocess.run([QMV, *map(str, args)], capture_output=True, text=True)
    if code is not None:
        check(p.returncode == code,
              f"{what or ' '.join(map(str, args))}: exit {p.returncode}, expected {code}\n"
              f"stdout: {p.stdout}\nstderr: {p.stderr}")
    return p


# ---- .npy and safetensors, written and read here independently of qmv ----

def npy_write(path, descr, shape, data: bytes):
    shp = "(" + "".join(f"{d}, " for d in shape).rstrip(" ") + ")" if len(shape) != 1 else f"({shape[0]},)"
    d = f"{{'descr': '{descr}', 'fortran_order': False, 'shape': {shp}, }}"
    total = (10 + len(d) + 1 + 63) // 64 * 64
    hdr = d + " " * (total - 10 - len(d) - 1) + "\n"
    with open(path, "wb") as f:
        f.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(hdr)) + hdr.encode() + data)


def npy_read(path):
    b = open(path, "rb").read()
    assert b[:6] == b"\x93NUMPY", "bad magic"
    hl = struct.unpack("<H", b[8:10])[0]
    h = ast.literal_eval(b[10:10 + hl].decode())
    assert (10 + hl) % 64 == 0, "data not 64-aligned"
    return h["descr"], tuple(h["shape"]), b[10 + hl:]


def f32s(vals):
    return struct.pack(f"<{len(vals)}f", *vals)


def unpack(descr, data):
    fmt = {"<f4": "f", "<f2": "e", "<u4": "I"}[descr]
    n = len(data) // struct.calcsize(fmt)
    return list(struct.unpack(f"<{n}{fmt}", data))


def st_read(path):
    b = open(path, "rb").read()
    n = struct.unpack("<Q", b[:8])[0]
    hdr = json.loads(b[8:8 + n])
    meta = hdr.pop("__metadata__", None) or {}
    base = 8 + n
    spans = sorted(v["data_offsets"] for v in hdr.values())
    pos = 0
    for s, e in spans:
        assert s == pos, f"gap or overlap at {s}"
        pos = e
    assert base + pos == len(b), "trailing bytes"
    tensors = {k: (v["dtype"], tuple(v["shape"]), b[base + v["data_offsets"][0]:base + v["data_offsets"][1]])
               for k, v in hdr.items()}
    return n, meta, tensors


def main():
    tmp = tempfile.mkdtemp(prefix="qmv_cli_")
    os.chdir(tmp)
    rnd = random.Random(5)
    N, K = 64, 256
    w = [rnd.uniform(-1, 1) for _ in range(N * K)]
    x = [rnd.uniform(-1, 1) for _ in range(2 * K)]
    npy_write("w.npy", "<f4", (N, K), f32s(w))
    npy_write("x.npy", "<f4", (2, K), f32s(x))
    npy_write("x1.npy", "<f4", (K,), f32s(x[:K]))

    # ---- usage ----
    p = run("--help", code=0)
    check(all(c in p.stdout for c in ("quantize", "dequantize", "matvec", "verify", "bench", "info")),
          "qmv --help lists the subcommands")
    p = run(code=2, what="qmv without arguments")
    p = run("frobnicate", code=2)
    check("unknown subcommand 'frobnicate'" in p.stderr, "unknown subcommand message")
    p = run("--version", code=0)
    check(p.stdout.startswith("qmv "), "--version")
    for c in ("quantize", "dequantize", "matvec", "verify", "bench", "info"):
        p = run(c, "--help", code=0)
        check(p.stdout.startswith(f"usage: qmv {c}") and p.stderr == "", f"{c} --help on stdout")
        p = run(c, "--no-such-option", code=2)
        check("usage: qmv" in p.stderr and p.stdout == "", f"{c}: bad option gives usage on stderr")
    p = run("quantize", "w.npy", "q.safetensors", code=2)
    check("--mode is required" in p.stderr, "quantize without --mode")
    p = run("quantize", "--mode", "mxfp5", "w.npy", "q.safetensors", code=2)
    check("bad value 'mxfp5' for --mode" in p.stderr, "bad --mode value")
    p = run("quantize", "--mode", "affine", "--bits", "7", "w.npy", "q.safetensors", code=2)
    check(not os.path.exists("q.safetensors"), "no output after a usage error")
    p = run("verify", "--exact", "--bound", "--weights", "a", "--x", "b", "--y", "c", code=2)
    check("exclude each other" in p.stderr, "--exact with --bound")

    # ---- quantize in every mode; the file is checked here, independently ----
    modes = [("affine", ["--bits", "4", "--group-size", "64"], 4, 64),
             ("affine", ["--bits", "3", "--group-size", "32"], 3, 32),
             ("mxfp4", [], 4, 32), ("nvfp4", ["--global-scale", "auto"], 4, 16), ("mxfp8", [], 8, 32)]
    for mode, extra, bits, g in modes:
        out = f"q_{mode}_{bits}.safetensors"
        p = run("quantize", "--mode", mode, *extra, "w.npy", out, code=0)
        check(p.stdout == "" and p.stderr == "", f"quantize {mode}: silent (stderr is not a terminal)")
        n, meta, t = st_read(out)
        check(n % 8 == 0, f"{mode}: header padded to 8")
        check(meta.get("qmv.mode") == mode and meta.get("qmv.bits") == str(bits)
              and meta.get("qmv.group_size") == str(g) and meta.get("qmv.profile") == "mlx-cpu"
              and meta.get("qmv.dtype.w") == "float32", f"{mode}: metadata {meta}")
        check(t["w.weight"][:2] == ("U32", (N, K * bits // 32)), f"{mode}: weight {t['w.weight'][:2]}")
        sdt = "F32" if mode == "affine" else "U8"
        check(t["w.scales"][:2] == (sdt, (N, K // g)), f"{mode}: scales {t['w.scales'][:2]}")
        check(("w.biases" in t) == (mode == "affine"), f"{mode}: biases present iff affine")
        if mode == "nvfp4":
            gs = float.fromhex(meta.get("qmv.global_scale.w", "nan"))
            check(gs == max(abs(struct.unpack("<f", struct.pack("<f", v))[0]) for v in w),
                  f"nvfp4 --global-scale auto = max |w| (got {gs})")
        p = run("info", out, code=0)
        check(f"{mode} {bits}-bit group {g} (from qmv metadata), N x K = {N} x {K}" in p.stdout,
              f"info {mode}: {p.stdout}")

    # the same quantize twice gives the same bytes (deterministic, thread-count independent)
    run("quantize", "--mode", "mxfp4", "--threads", "1", "w.npy", "again.safetensors", code=0)
    check(open("again.safetensors", "rb").read() == open("q_mxfp4_4.safetensors", "rb").read(),
          "quantize is deterministic across thread counts")

    # ---- matvec against an independent float64 product of the dequantized matrix ----
    for mode, _, bits, _ in modes:
        q = f"q_{mode}_{bits}.safetensors"
        run("matvec", "--weights", q, "--x", "x.npy", "--out", f"y_{mode}{bits}.npy", code=0)
        run("dequantize", "--dtype", "float32", q, f"d_{mode}{bits}.npy", code=0)
        descr, shape, data = npy_read(f"y_{mode}{bits}.npy")
        check(descr == "<f4" and shape == (2, N), f"matvec {mode}: y {descr} {shape}")
        dd, dshape, ddata = npy_read(f"d_{mode}{bits}.npy")
        check(dd == "<f4" and dshape == (N, K), f"dequantize {mode}: {dd} {dshape}")
        y, d = unpack(descr, data), unpack(dd, ddata)
        worst = 0.0
        for m in range(2):
            for n in range(N):
                row = d[n * K:(n + 1) * K]
                xs = x[m * K:(m + 1) * K]
                xs = [struct.unpack("<f", struct.pack("<f", v))[0] for v in xs]
                e = math.fsum(a * b for a, b in zip(xs, row))
                s = math.fsum(abs(a * b) for a, b in zip(xs, row))
                worst = max(worst, abs(y[m * N + n] - e) / (s * 1e-5 + 1e-30))
        # affine's dequantized values are rounded (fl(fl(q*s)+b)), so allow 1e-5 relative of S
        check(worst <= 1.0, f"matvec {mode}{bits} agrees with x . dequantize(W)^T ({worst})")
        p = run("verify", "--weights", q, "--x", "x.npy", "--y", f"y_{mode}{bits}.npy", code=0)
        check("PASS: every element is bit-identical" in p.stdout, f"verify --exact {mode}")
        p = run("verify", "--bound", "--weights", q, "--x", "x.npy", "--y", f"y_{mode}{bits}.npy", code=0)
        check("PASS: 128 elements within the bound" in p.stdout, f"verify --bound {mode}: {p.stdout}")

    # 1-D x gives 1-D y; float16 y on request
    run("matvec", "--weights", "q_mxfp4_4.safetensors", "--x", "x1.npy", "--out", "y1.npy",
        "--y-dtype", "float16", code=0)
    check(npy_read("y1.npy")[:2] == ("<f2", (N,)), "1-D x -> (N,) float16 y")
    p = run("verify", "--weights", "q_mxfp4_4.safetensors", "--x", "x1.npy", "--y", "y1.npy", code=0)

    # ---- verify catches one flipped bit (--exact) and a perturbed element (--bound) ----
    descr, shape, data = npy_read("y_mxfp44.npy")
    bad = bytearray(data)
    bad[4 * 37] ^= 0x01  # lowest mantissa bit of y[0][37]
    npy_write("yflip.npy", descr, shape, bytes(bad))
    p = run("verify", "--exact", "--weights", "q_mxfp4_4.safetensors", "--x", "x.npy", "--y", "yflip.npy", code=1)
    check("FAIL: 1 of 128 elements differ" in p.stdout and "y[0][37]" in p.stdout,
          f"--exact reports the flipped bit: {p.stdout}")
    p = run("verify", "--bound", "--weights", "q_mxfp4_4.safetensors", "--x", "x.npy", "--y", "yflip.npy", code=0)
    check("PASS" in p.stdout, "--bound accepts a 1-ulp change")
    yv = unpack(descr, data)
    yv[64 + 5] += 0.01 * max(1.0, abs(yv[64 + 5]))
    npy_write("yperturbed.npy", descr, shape, f32s(yv))
    p = run("verify", "--bound", "--weights", "q_mxfp4_4.safetensors", "--x", "x.npy", "--y", "yperturbed.npy", code=1)
    check("FAIL: 1 of 128 checked elements exceed the bound" in p.stdout and "y[1][5]" in p.stdout,
          f"--bound catches the perturbed element: {p.stdout}")
    # a float16 accumulation bound is far looser: the same perturbation passes
    p = run("verify", "--bound", "--accum", "f16", "--weights", "q_mxfp4_4.safetensors", "--x", "x.npy",
            "--y", "yperturbed.npy", code=1)
    check("NO POWER" in p.stdout and "weak" in p.stdout, f"--bound --accum f16 says it has no power: {p.stdout}")
    p = run("verify", "--bound", "--accum", "f16", "--allow-weak", "--weights", "q_mxfp4_4.safetensors",
            "--x", "x.npy", "--y", "yperturbed.npy", code=0)
    p = run("verify", "--accum", "f16", "--weights", "q_mxfp4_4.safetensors", "--x", "x.npy", "--y", "y_mxfp44.npy", code=2)
    check("--accum goes with --bound" in p.stderr, "--accum without --bound")
    npy_write("ywrong.npy", "<f4", (2, N + 1), f32s([0.0] * (2 * (N + 1))))
    p = run("verify", "--weights", "q_mxfp4_4.safetensors", "--x", "x.npy", "--y", "ywrong.npy", code=2)
    check("ywrong.npy: y has 2 rows of 65, expected 2 rows of N = 64" in p.stderr, f"y shape check: {p.stderr}")

    # ---- verify: orders, --stat, never a vacuous pass, float64 Y (issues 14 and 15) ----
    Q4 = ["--weights", "q_mxfp4_4.safetensors", "--x", "x.npy"]
    p = run("verify", "--list-orders", code=0)
    check("qmv-v1 (default, confirmed)" in p.stdout and "confirmation: " in p.stdout and
          "NOT confirmed: NOT" not in p.stdout, f"--list-orders: {p.stdout}")
    p = run("verify", "--exact", "--order", "qmv-v1", *Q4, "--y", "y_mxfp44.npy", code=0)
    check("bit-identical to order qmv-v1" in p.stdout, f"--order qmv-v1: {p.stdout}")
    p = run("verify", "--order", "no-such-order", *Q4, "--y", "y_mxfp44.npy", code=2)
    check("unknown order" in p.stderr, f"unknown --order: {p.stderr}")
    run("verify", "--bound", "--order", "qmv-v1", *Q4, "--y", "y_mxfp44.npy", code=2)
    run("verify", "--bound", "--stat", *Q4, "--y", "y_mxfp44.npy", code=2)
    run("verify", "--bound", "--p", "1e-6", *Q4, "--y", "y_mxfp44.npy", code=2)
    run("verify", "--stat", "--p", "0.7", *Q4, "--y", "y_mxfp44.npy", code=2)
    p = run("verify", "--stat", "--p", "1e-6", *Q4, "--y", "y_mxfp44.npy", code=0)
    check("PASS: 128 elements within the bound" in p.stdout and "NMSE" in p.stdout and
          "detectable error relative to |E|: median" in p.stdout, f"--stat honest: {p.stdout}")
    p = run("verify", "--stat", *Q4, "--y", "yperturbed.npy", code=1)
    check("FAIL: 1 of 128 checked elements exceed the bound" in p.stdout, f"--stat perturbed: {p.stdout}")
    # float64 Y: --exact refuses it (rounding to float32 would hide differences)
    yv = unpack(descr, data)
    npy_write("y64.npy", "<f8", shape, struct.pack(f"<{len(yv)}d", *[v + 1e-9 for v in yv]))
    p = run("verify", "--exact", *Q4, "--y", "y64.npy", code=2)
    check("float64" in p.stderr, f"--exact refuses a float64 Y: {p.stderr}")
    run("verify", "--bound", *Q4, "--y", "y64.npy", code=0)
    # x so large that a float16 accumulation may overflow: nothing can be checked, and that is
    # never a pass, not even with --allow-unchecked
    xbig = [v * 30000.0 for v in x]
    npy_write("xbig.npy", "<f4", (2, K), f32s(xbig))
    run("matvec", "--force", "--weights", "q_mxfp4_4.safetensors", "--x", "xbig.npy", "--out", "ybig.npy", code=0)
    for flags in ((), ("--allow-unchecked",)):
        p = run("verify", "--bound", "--accum", "f16", *flags, "--weights", "q_mxfp4_4.safetensors",
                "--x", "xbig.npy", "--y", "ybig.npy", code=1)
        check("NO CHECK: none of the 128 elements" in p.stdout and "PASS" not in p.stdout,
              f"nothing checked is no pass {flags}: {p.stdout}")
    # one row large, one small: unchecked elements fail the run unless allowed
    npy_write("xmix.npy", "<f4", (2, K), f32s(xbig[:K] + x[K:]))
    run("matvec", "--force", "--weights", "q_mxfp4_4.safetensors", "--x", "xmix.npy", "--out", "ymix.npy", code=0)
    p = run("verify", "--stat", "--accum", "f16", "--weights", "q_mxfp4_4.safetensors", "--x", "xmix.npy",
            "--y", "ymix.npy", code=1)
    check("64 unchecked" in p.stdout and "NO CHECK: 64 elements unchecked" in p.stdout, f"unchecked: {p.stdout}")
    p = run("verify", "--stat", "--accum", "f16", "--allow-unchecked", "--allow-weak", "--weights",
            "q_mxfp4_4.safetensors", "--x", "xmix.npy", "--y", "ymix.npy", code=0)
    check("(unchecked ones allowed)" in p.stdout, f"--allow-unchecked: {p.stdout}")

    # ---- dequantize to safetensors keeps the other tensors and the name ----
    run("dequantize", "q_affine_4.safetensors", "d.safetensors", code=0)
    _, meta, t = st_read("d.safetensors")
    check(set(t) == {"w.weight"} and t["w.weight"][:2] == ("F32", (N, K)),
          f"dequantize to safetensors: {[(k, v[:2]) for k, v in t.items()]}")

    # ---- bad input: file name and reason on stderr, nothing written ----
    good = open("w.npy", "rb").read()
    open("trunc.npy", "wb").write(good[:-3])
    p = run("quantize", "--mode", "mxfp4", "trunc.npy", "out.safetensors", code=2)
    check("trunc.npy: malformed .npy file: truncated data" in p.stderr, f"truncated input: {p.stderr}")
    open("junk.bin", "wb").write(b"hello, world")
    p = run("info", "junk.bin", code=2)
    check("junk.bin: neither a .npy nor a safetensors file" in p.stderr, f"junk input: {p.stderr}")
    p = run("info", "missing.npy", code=2)
    check("missing.npy: cannot open: No such file or directory" in p.stderr, f"missing file: {p.stderr}")
    st = open("q_mxfp4_4.safetensors", "rb").read()
    open("cut.safetensors", "wb").write(st[:-1])
    p = run("matvec", "--weights", "cut.safetensors", "--x", "x.npy", "--out", "out.npy", code=2)
    check("cut.safetensors: malformed safetensors file: " in p.stderr, f"truncated safetensors: {p.stderr}")
    wn = list(w)
    wn[100] = float("nan")
    npy_write("wnan.npy", "<f4", (N, K), f32s(wn))
    p = run("quantize", "--mode", "mxfp4", "wnan.npy", "out.safetensors", code=2)
    check("non-finite" in p.stderr.lower() or "nan" in p.stderr.lower(), f"NaN weights: {p.stderr}")
    npy_write("x300.npy", "<f4", (300,), f32s([0.0] * 300))
    p = run("matvec", "--weights", "q_mxfp4_4.safetensors", "--x", "x300.npy", "--out", "out.npy", code=2)
    check("x has 300 columns" in p.stderr, f"K mismatch: {p.stderr}")
    check(not [f for f in os.listdir(".") if f.startswith("out.")],
          f"no partial or temporary output files: {os.listdir('.')}")
    # refusal to overwrite, then --force
    before = open("y1.npy", "rb").read()
    p = run("matvec", "--weights", "q_mxfp4_4.safetensors", "--x", "x.npy", "--out", "y1.npy", code=2)
    check("y1.npy: already exists" in p.stderr and open("y1.npy", "rb").read() == before,
          "existing output kept without --force")
    run("matvec", "--weights", "q_mxfp4_4.safetensors", "--x", "x.npy", "--out", "y1.npy", "--force", code=0)
    check(npy_read("y1.npy")[1] == (2, N), "--force replaces the output")

    # ---- an MLX-style file without metadata: fp modes recognised, affine needs flags ----
    _, _, t = st_read("q_affine_4.safetensors")
    body = b"".join(t[k][2] for k in ("w.weight", "w.scales", "w.biases"))
    hdr, pos = {}, 0
    for k in ("w.weight", "w.scales", "w.biases"):
        dt, shp, data = t[k]
        hdr[k] = {"dtype": dt, "shape": list(shp), "data_offsets": [pos, pos + len(data)]}
        pos += len(data)
    hdr["__metadata__"] = None
    h = json.dumps(hdr, separators=(",", ":")).encode()
    open("mlx_affine.safetensors", "wb").write(struct.pack("<Q", len(h)) + h + body)
    p = run("matvec", "--weights", "mlx_affine.safetensors", "--x", "x.npy", "--out", "ym.npy", code=2)
    check("pass one of" in p.stderr and "--bits 4 --group-size 64" in p.stderr,
          f"affine without metadata asks for flags: {p.stderr}")
    run("matvec", "--weights", "mlx_affine.safetensors", "--x", "x.npy", "--out", "ym.npy", "--bits", "4", code=0)
    check(open("ym.npy", "rb").read() == open("y_affine4.npy", "rb").read(),
          "same result with the format from flags")

    # ---- --device cuda without a GPU (or without the backend) ----
    p = run("matvec", "--weights", "q_mxfp4_4.safetensors", "--x", "x.npy", "--out", "yc.npy", "--device", "cuda")
    if p.returncode == 2:
        # A CUDA build on a machine without a usable GPU names the cause plainly, not the
        # runtime's "CUDA driver version is insufficient ..." for a driver that is absent.
        check("--device cuda: no CUDA device (no NVIDIA GPU or driver found)" in p.stderr
              or "without the CUDA backend" in p.stderr,
              f"--device cuda without a GPU says why: {p.stderr}")
        cuda_built = "without the CUDA backend" not in p.stderr
        # The bench says the same in its context line.
        p = run("bench", "--n", "128", "--k", "256", "--reps", "1", "--span-mib", "1",
                "--quant-reps", "0", "--modes", "mxfp4", "--json", code=0)
        want = ("no CUDA device: no NVIDIA GPU or driver found" if cuda_built
                else "this qmv was built without the CUDA backend")
        check(f'"cuda": "{want}"' in p.stdout, f"bench without a GPU says why: {p.stdout}")
        check(not os.path.exists("yc.npy"), "no output when the device is missing")
    else:
        check(p.returncode == 0 and open("yc.npy", "rb").read() == open("y_mxfp44.npy", "rb").read(),
              "GPU result identical to the CPU's")

    # ---- a small bench run, JSON: quantize, dequantize and qmv rows per tier, each exact;
    # the qmv rows carry their read ceiling ----
    p = run("bench", "--n", "128", "--k", "256", "--reps", "2", "--quant-reps", "1", "--no-cuda",
            "--span-mib", "2", "--threads", "1,0", "--modes", "mxfp4,affine", "--json", code=0)
    try:
        doc = json.loads(p.stdout)
        ctx, rows = doc["context"], doc["results"]
        tiers = ctx["cpu_tiers"]
        cases = [(m, t) for m in ("mxfp4", "affine4-g64") for t in ctx["threads"]]
        # --threads 1,0: 1 and all, each once (one entry where all is 1 thread, or no OpenMP)
        check(ctx["modes"] == ["mxfp4", "affine4-g64"] and ctx["threads"][0] == 1 and
              len(ctx["threads"]) == len(set(ctx["threads"])) >= 1, f"bench JSON context: {ctx}")
        for op in ("quantize", "dequantize", "qmv"):
            got = sorted((r["mode"], r["threads"], r["path"]) for r in rows if r["op"] == op)
            want = sorted((m, t, "cpu:" + tier) for m, t in cases for tier in tiers)
            check(got == want, f"bench JSON {op} rows: {got} != {want}")
        check(doc["all_exact"] is True and all(r["exact"] for r in rows),
              f"bench JSON exact: {p.stdout}")
        qmv_rows = [r for r in rows if r["op"] == "qmv"]
        check(all(r["read_gbps"] > 0 and r["of_peak"] > 0 and r["copies"] >= 2 and
                  r["read_shape"] in ("one-stream", "four-streams", "four-rows") and
                  abs(r["of_peak"] - r["read_time_ns"] / r["min_time_ns"]) <=
                  1e-4 + 1e-3 * r["of_peak"] for r in qmv_rows),
              f"bench JSON read ceiling (of_peak = fastest read pass / fastest call): {qmv_rows}")
        # the FMA ceiling: one rate per tier and thread count, and each row's share of it (a
        # call cannot retire N*K*M FMAs faster than the same threads' bare FMA loop)
        fc = ctx["fma_ceiling"]
        check(sorted(fc) == sorted(tiers) and
              all(len(v) == len(ctx["threads"]) and all(r > 0 for r in v) for v in fc.values()),
              f"bench JSON fma_ceiling: {fc}")
        check(all(0 < r["of_fma"] <= 1.25 and
                  abs(r["of_fma"] - r["fma_time_ns"] / r["min_time_ns"]) <=
                  1e-4 + 1e-3 * r["of_fma"] for r in qmv_rows),
              f"bench JSON FMA ceiling (of_fma = N*K*M FMAs at the ceiling / fastest call): "
              f"{qmv_rows}")
        check(all("of_fma" not in r for r in rows if r["op"] != "qmv"),
              f"bench JSON: quantize rows have no FMA ceiling: {rows}")
        check(all(r["of_peak"] is None for r in rows if r["op"] != "qmv"),
              f"bench JSON: quantize rows have no ceiling: {rows}")
    except (ValueError, KeyError) as e:
        check(False, f"bench --json is not the expected JSON ({e}): {p.stdout}")

    # ---- bench formats: the library's mode names, bits and group sizes; others refused ----
    for modes in ("affine7", "mxfp4-g16", "mxfp", "affine4-x64", "affine4-g", "q4_0"):
        p = run("bench", "--n", "64", "--k", "64", "--modes", modes, "--no-cuda", code=2)
        check("bad value" in p.stderr, f"bench --modes {modes}: {p.stderr}")
    p = run("bench", "--n", "64", "--k", "128", "--reps", "1", "--quant-reps", "0", "--no-cuda",
            "--span-mib", "1", "--modes", "affine3-g32,affine2-g128,mxfp8", "--profile", "ocp",
            "--json", code=0)
    ctx = json.loads(p.stdout)["context"]
    check(ctx["modes"] == ["affine3-g32", "affine2-g128", "mxfp8"] and ctx["profile"] == "ocp",
          f"bench --modes with bits and groups, --profile: {p.stdout}")

    shutil.rmtree(tmp, ignore_errors=True)
    if failures:
        print(f"cli_test: {len(failures)} check(s) FAILED")
        return 1
    print("cli_test: all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
