#!/usr/bin/env python3
"""mlx_model_test.py - the qmv tool on MLX model directories shaped as mlx-lm writes them
(label mlx).

    python3 tests/cli/mlx_model_test.py /path/to/qmv

A generated model: three shards with model.safetensors.index.json, and config.json whose
"quantization" holds the model-wide 4-bit g64 affine and per-module entries (a 6-bit g32
lm_head, an 8-bit g32 and a 1-bit g64 projection, a module left in floating point, mxfp4
experts), MoE stacks of 8 experts in affine and mxfp4, a complex64 tensor.
  - `qmv info DIR` names every matrix's format "from config.json" (experts listed), lists the
    complex64 tensor, exits 0; no flag is needed where the shapes alone are ambiguous.
  - `qmv dequantize DIR OUT` equals mx.dequantize for every matrix ([E, N, K] for stacks),
    bit for bit, and copies the other tensors from every shard.
  - `qmv matvec DIR --tensor T --expert E` passes `verify --exact`; MLX's gather_qmm output for
    the vectors routed to expert E passes `verify --bound` for that expert; x as MLX's own
    bfloat16 .npy ('<V2') is read; `matvec --experts IDX` (the whole routing in one call) passes
    `verify --experts --exact`, gather_qmm's output passes `verify --experts --bound`, and an
    index out of range is refused.
  - misuse exits 2 with a message and writes nothing: a stack without --expert, an expert out
    of range, --expert on one matrix, config.json contradicting the shapes, options
    contradicting config.json, an index naming the wrong shard or a path outside DIR; in a lone
    file with mixed formats, a partial option that fits the matrices as different formats.
  - x and y as safetensors (--out by its extension, any other refused); info and verify --json.
  - `qmv quantize` quantizes an expert stack per expert exactly as mx.quantize does (affine
    and mxfp4) and warns for a float tensor of rank 4 that it leaves unquantized.
Exit status: 0 passed, 1 a check failed, 77 skipped (numpy or MLX not importable).
"""
import json
import os
import shutil
import sys
import tempfile

SKIP = 77
try:
    import numpy as np
    import mlx.core as mx
    mx.eval(mx.array([1.0]) + 1)
except Exception as e:  # noqa: BLE001
    print(f"mlx_model_test: SKIPPED: numpy or MLX cannot be imported or run ({e})", flush=True)
    sys.exit(SKIP)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cli_test as ct  # noqa: E402  (check(), run() of the qmv given as argv[1])

check, run = ct.check, ct.run


def bits_of(a):
    if a.dtype in (mx.bfloat16, mx.float16):
        return np.array(a.view(mx.uint16))
    return np.array(a.view(mx.uint32)) if a.dtype == mx.float32 else np.array(a)


def quant(w, mode="affine", bits=4, group_size=64):
    kw = {"mode": mode} if mode != "affine" else {"mode": mode, "bits": bits, "group_size": group_size}
    r = mx.quantize(w, **kw)
    return (r[0], r[1], r[2] if len(r) > 2 else None), kw


# module -> (shape, quantization kwargs or None for float)
E, N, K = 8, 64, 256
MODULES = {
    "model.layers.0.self_attn.q_proj": ((N, K), {"bits": 4, "group_size": 64}),
    "model.layers.0.self_attn.k_proj": ((N, K), {"bits": 8, "group_size": 32}),
    "model.layers.0.self_attn.v_proj": ((N, K), {"bits": 1, "group_size": 64}),
    "model.layers.0.mlp.switch_mlp.down_proj": ((E, N, K), {"bits": 4, "group_size": 64}),
    "model.layers.1.mlp.experts.gate_proj": ((E, N, K), {"mode": "mxfp4"}),
    "model.layers.1.self_attn.o_proj": ((N, K), None),
    "lm_head": ((2 * N, K), {"bits": 6, "group_size": 32}),
}


def make_model(d):
    os.makedirs(d)
    mx.random.seed(5)
    tensors, qcfg, ref = {}, {"group_size": 64, "bits": 4, "mode": "affine"}, {}
    for name, (shape, q) in MODULES.items():
        w = (mx.random.normal(shape) * 0.5).astype(mx.float16)
        if q is None:
            tensors[name + ".weight"] = w
            qcfg[name] = False
            continue
        (wq, sc, bi), kw = quant(w, **q)
        tensors[name + ".weight"], tensors[name + ".scales"] = wq, sc
        if bi is not None:
            tensors[name + ".biases"] = bi
        ref[name] = (wq, sc, bi, kw)
        if q != {"bits": 4, "group_size": 64}:
            qcfg[name] = {"group_size": kw.get("group_size", 32), "bits": kw.get("bits", 4)}
            if "mode" in q:
                qcfg[name]["mode"] = q["mode"]
    tensors["model.rope.freqs"] = mx.array([1 + 2j, 3 - 1j], dtype=mx.complex64)
    names = sorted(tensors)
    shards = [names[i::3] for i in range(3)]
    weight_map = {}
    for i, part in enumerate(shards):
        fn = f"model-{i + 1:05d}-of-00003.safetensors"
        mx.save_safetensors(os.path.join(d, fn), {k: tensors[k] for k in part}, metadata={"format": "mlx"})
        weight_map.update({k: fn for k in part})
    with open(os.path.join(d, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": 0}, "weight_map": weight_map}, f)
    cfg = {"model_type": "test", "quantization": qcfg, "quantization_config": qcfg}
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(cfg, f)
    return ref


def edit_json(path, fn):
    with open(path) as f:
        j = json.load(f)
    fn(j)
    with open(path, "w") as f:
        json.dump(j, f)


def main():
    tmp = tempfile.mkdtemp(prefix="qmv_model_")
    os.chdir(tmp)
    ref = make_model("m")

    # info: every format from config.json, experts listed, the complex64 tensor listed
    p = run("info", "m")
    check(p.returncode == 0, f"info: exit {p.returncode}: {p.stderr}")
    want = {
        "model.layers.0.self_attn.q_proj": "affine 4-bit group 64 (from config.json), N x K",
        "model.layers.0.self_attn.k_proj": "affine 8-bit group 32 (from config.json)",
        "model.layers.0.self_attn.v_proj": "affine 1-bit group 64 (from config.json)",
        "model.layers.0.mlp.switch_mlp.down_proj": "affine 4-bit group 64 (from config.json), 8 experts of N x K = 64 x 256",
        "model.layers.1.mlp.experts.gate_proj": "mxfp4 4-bit group 32 (from config.json), 8 experts of N x K = 64 x 256",
        "lm_head": "affine 6-bit group 32 (from config.json), N x K = 128 x 256",
    }
    for name, text in want.items():
        line = next((l for l in p.stdout.splitlines() if l.split() and l.split()[0] == name), "")
        check(text in line, f"info: {name}: want '{text}', got '{line}'")
    check("C64" in p.stdout and "3 safetensors files" in p.stdout, f"info: shards and C64: {p.stdout}")

    # dequantize the whole directory == mx.dequantize, stacks as [E, N, K]
    p = run("dequantize", "--dtype", "float16", "m", "d.safetensors")
    if check(p.returncode == 0, f"dequantize DIR: {p.stderr}"):
        out = mx.load("d.safetensors")
        for name, (wq, sc, bi, kw) in ref.items():
            r = mx.dequantize(wq, sc, bi, dtype=mx.float16, **kw)
            got = out.get(name + ".weight")
            check(got is not None and got.shape == r.shape and np.array_equal(bits_of(got), bits_of(r)),
                  f"dequantize: {name} differs from mx.dequantize")
        check("model.rope.freqs" in out and "model.layers.1.self_attn.o_proj.weight" in out,
              "dequantize: the other tensors of every shard are copied")

    # gather: matvec per expert is exact; MLX's gather_qmm within the bound
    M = 6
    idx = np.array([3, 0, 3, 7, 1, 3], dtype=np.uint32)
    x = mx.random.normal((M, K)).astype(mx.bfloat16)
    for name in ("model.layers.0.mlp.switch_mlp.down_proj", "model.layers.1.mlp.experts.gate_proj"):
        wq, sc, bi, kw = ref[name]
        y = mx.gather_qmm(x[:, None, :], wq, sc, bi, rhs_indices=mx.array(idx), transpose=True, **kw)
        y = y.reshape(M, -1)
        # the whole routing in one call: matvec --experts (qmv_gather_qmv) is exact per
        # vector, and MLX's gather_qmm output is within the bound of each used expert
        mx.save("xg.npy", x)
        mx.save("yg.npy", y)
        np.save("idx.npy", idx.astype(np.int32))
        p = run("matvec", "--force", "--weights", "m", "--tensor", name, "--experts", "idx.npy", "--x", "xg.npy",
                "--out", "yqg.npy")
        if check(p.returncode == 0, f"matvec --experts {name}: {p.stderr}"):
            p = run("verify", "--json", "--weights", "m", "--tensor", name, "--experts", "idx.npy", "--x", "xg.npy",
                    "--y", "yqg.npy")
            doc = json.loads(p.stdout) if p.returncode == 0 else {}
            check([d.get("expert") for d in doc.get("experts", [])] == [0, 1, 3, 7]
                  and all(d["verdict"] == "pass" for d in doc["experts"]), f"verify --experts --exact: {p.stdout}{p.stderr}")
        p = run("verify", "--bound", "--allow-weak", "--accum", "bf16", "--weights", "m", "--tensor", name,
                "--experts", "idx.npy", "--x", "xg.npy", "--y", "yg.npy")
        check(p.returncode == 0 and p.stdout.count("PASS") == 4, f"gather_qmm within --bound (--experts): {p.stdout}{p.stderr}")
        np.save("badidx.npy", np.array([0, 1, 2, 8, 0, 0], dtype=np.int64))
        p = run("matvec", "--force", "--weights", "m", "--tensor", name, "--experts", "badidx.npy", "--x", "xg.npy",
                "--out", "yqg.npy")
        check(p.returncode == 2 and "badidx.npy: --experts[3] = 8" in p.stderr, f"--experts out of range: {p.stderr}")
        for e in sorted(set(idx.tolist())):
            rows = mx.array(np.nonzero(idx == e)[0].astype(np.uint32))
            mx.save("xe.npy", x[rows])  # MLX's bfloat16 .npy ('<V2')
            mx.save("ye.npy", y[rows])
            p = run("matvec", "--force", "--weights", "m", "--tensor", name, "--expert", e, "--x", "xe.npy",
                    "--out", "yq.npy")
            if check(p.returncode == 0, f"matvec {name} --expert {e}: {p.stderr}"):
                p = run("verify", "--weights", "m", "--tensor", name, "--expert", e, "--x", "xe.npy", "--y", "yq.npy")
                check(p.returncode == 0, f"verify --exact {name} --expert {e}: {p.stdout}{p.stderr}")
            p = run("verify", "--bound", "--allow-weak", "--accum", "bf16", "--weights", "m", "--tensor", name,
                    "--expert", e, "--x", "xe.npy", "--y", "ye.npy")
            check(p.returncode == 0, f"gather_qmm within --bound, {name} expert {e}: {p.stdout}{p.stderr}")

    # misuse: exit 2, a message, nothing written
    stack = "model.layers.0.mlp.switch_mlp.down_proj"

    def refused(args, needle, what):
        if os.path.exists("no.npy"):
            os.remove("no.npy")
        p = run(*args)
        check(p.returncode == 2 and needle in p.stderr and not os.path.exists("no.npy"),
              f"{what}: exit {p.returncode}, {p.stderr!r}")

    refused(["matvec", "--weights", "m", "--tensor", stack, "--x", "xe.npy", "--out", "no.npy"],
            "choose one with --expert", "stack without --expert")
    refused(["matvec", "--weights", "m", "--tensor", stack, "--expert", 8, "--x", "xe.npy", "--out", "no.npy"],
            "experts 0 to 7", "expert out of range")
    refused(["matvec", "--weights", "m", "--tensor", "lm_head", "--expert", 0, "--x", "xe.npy", "--out", "no.npy"],
            "not an expert stack", "--expert on one matrix")
    refused(["dequantize", "--tensor", "lm_head", "--bits", 3, "m", "no.npy"], "contradict config.json",
            "options contradicting config.json")

    shutil.copytree("m", "bad")
    edit_json("bad/config.json", lambda j: j["quantization"].update({"lm_head": {"bits": 4, "group_size": 64}}))
    refused(["dequantize", "--tensor", "lm_head", "bad", "no.npy"], "from config.json", "config.json vs shapes")
    edit_json("bad/config.json", lambda j: j["quantization"].update({"lm_head": False}))
    refused(["dequantize", "--tensor", "lm_head", "bad", "no.npy"], "not quantized", "config.json: false")
    shutil.copy("m/config.json", "bad/config.json")
    edit_json("bad/model.safetensors.index.json",
              lambda j: j["weight_map"].update({"lm_head.weight": "model-00001-of-00003.safetensors"
                                                if j["weight_map"]["lm_head.weight"] != "model-00001-of-00003.safetensors"
                                                else "model-00002-of-00003.safetensors"}))
    refused(["info", "bad"], "does not hold it", "index naming the wrong shard")
    edit_json("bad/model.safetensors.index.json", lambda j: j["weight_map"].update({"lm_head.weight": "../x"}))
    refused(["info", "bad"], "file name in the directory", "index path outside DIR")

    # a lone file with a 4-bit g64 layer and a 6-bit g32 lm_head: --group-size 64 alone fits
    # lm_head as 3-bit g64, so it is refused for the whole file; both flags name one format
    (wa, sa, ba), _ = quant(mx.random.normal((N, K)), bits=4, group_size=64)
    (wb, sb, bb), _ = quant(mx.random.normal((2 * N, K)), bits=6, group_size=32)
    mx.save_safetensors("mixed.safetensors", {"layer.weight": wa, "layer.scales": sa, "layer.biases": ba,
                                              "lm_head.weight": wb, "lm_head.scales": sb, "lm_head.biases": bb})
    if os.path.exists("no.safetensors"):
        os.remove("no.safetensors")
    p = run("dequantize", "--group-size", 64, "mixed.safetensors", "no.safetensors")
    check(p.returncode == 2 and "different formats" in p.stderr and not os.path.exists("no.safetensors"),
          f"mixed file, --group-size 64: {p.returncode} {p.stderr}")
    p = run("dequantize", "--bits", 4, "--group-size", 64, "mixed.safetensors", "no.safetensors")
    check(p.returncode == 2 and "--bits 6 --group-size 32" in p.stderr and not os.path.exists("no.safetensors"),
          f"mixed file, --bits 4 --group-size 64 lists lm_head's candidates: {p.stderr}")
    p = run("dequantize", "--tensor", "lm_head", "--bits", 6, "mixed.safetensors", "ok.npy")
    check(p.returncode == 0, f"mixed file, --tensor lm_head --bits 6: {p.stderr}")

    # files in and out: x and y as safetensors, another extension refused; --json documents
    mx.save_safetensors("x.safetensors", {"x": x})
    q_proj = "model.layers.0.self_attn.q_proj"
    p = run("matvec", "--force", "--weights", "m", "--tensor", q_proj, "--x", "x.safetensors", "--out", "y.safetensors")
    if check(p.returncode == 0, f"matvec to safetensors: {p.stderr}"):
        check(list(mx.load("y.safetensors")) == ["y"], "matvec: y.safetensors holds the tensor 'y'")
        p = run("verify", "--json", "--weights", "m", "--tensor", q_proj, "--x", "x.safetensors", "--y", "y.safetensors")
        doc = json.loads(p.stdout) if p.returncode == 0 else {}
        check(doc.get("verdict") == "pass" and doc.get("elements", {}).get("pass") == M * N and doc.get("exit") == 0,
              f"verify --json: {p.stdout}{p.stderr}")
    refused(["matvec", "--weights", "m", "--tensor", q_proj, "--x", "x.safetensors", "--out", "no.txt"],
            "'.txt' is neither", "an output extension other than .npy/.safetensors")
    p = run("info", "--json", "m")
    doc = json.loads(p.stdout) if p.returncode == 0 else {"files": [{}]}
    mats = {m["name"]: m for m in doc["files"][0].get("matrices", [])}
    st = mats.get("model.layers.1.mlp.experts.gate_proj", {})
    check(doc["files"][0].get("kind") == "model" and st.get("experts") == E and st.get("source") == "config.json"
          and st.get("format", {}).get("mode") == "mxfp4" and len(mats) == 6, f"info --json: {p.stdout[:400]}")

    # quantize: an expert stack per expert, equal to mx.quantize on the stack; a float tensor of
    # rank 4 is left unquantized with a warning
    ws = (mx.random.normal((E, N, K)) * 0.5).astype(mx.bfloat16)
    mx.save_safetensors("float.safetensors", {"experts.weight": ws, "conv.weight": mx.zeros((2, 2, 2, 64)),
                                              "norm.weight": mx.ones((K,))})
    for mode, kw in (("affine", {"bits": 4, "group_size": 64}), ("mxfp4", {})):
        flags = ["--bits", 4, "--group-size", 64] if mode == "affine" else []
        p = run("quantize", "--force", "--mode", mode, *flags, "float.safetensors", "q.safetensors")
        if check(p.returncode == 0, f"quantize a stack ({mode}): {p.stderr}"):
            check("'conv.weight' (rank 4" in p.stderr and "norm.weight" not in p.stderr,
                  f"quantize warns for the rank-4 tensor only: {p.stderr!r}")
            got = mx.load("q.safetensors")
            r = mx.quantize(ws, mode=mode, **kw)
            for part, want in zip(("weight", "scales", "biases"), r):
                g = got.get("experts." + part)
                check(g is not None and g.shape == want.shape and np.array_equal(bits_of(g), bits_of(want)),
                      f"quantize {mode}: experts.{part} differs from mx.quantize")
            p = run("info", "q.safetensors")
            check(p.returncode == 0 and "8 experts of N x K = 64 x 256" in p.stdout, f"info of a quantized stack: {p.stdout}")

    os.chdir("/")
    shutil.rmtree(tmp, ignore_errors=True)
    if ct.failures:
        print(f"mlx_model_test: {len(ct.failures)} check(s) failed")
        return 1
    print("mlx_model_test: all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
