#!/usr/bin/env python3
"""cli_output_test.py - how the built `qmv` binary writes its output files (the guarantees
are in docs/CLI-GUARANTEES.md):

    python3 tests/cli/cli_output_test.py /path/to/qmv

write errors name the file and the reason (/dev/full); character devices and FIFOs are written
through and never replaced, with or without --force; symbolic links at OUT, dangling or not,
need --force; --force keeps the replaced file's mode; temporary files of killed runs are
removed by the next run, a live process's are not; of two runs writing the same new OUT at
once exactly one succeeds. The helpers come from cli_test.py.
Exit status: 0 all checks passed, 1 a check failed.
"""
import os
import random
import shutil
import stat
import subprocess
import sys
import tempfile
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cli_test  # noqa: E402  (QMV from argv[1], check, run, npy_write, f32s)

from cli_test import QMV, check, f32s, npy_write, run  # noqa: E402

TAG = ".qmv-tmp-"


def quantize(out, *extra, code=None):
    return run("quantize", "--mode", "mxfp4", *extra, "w.npy", out, code=code)


def temporaries():
    return [f for f in os.listdir(".") if TAG in f]


def read_fifo(path, sink):
    with open(path, "rb") as f:
        sink.append(f.read())


def main():
    tmp = tempfile.mkdtemp(prefix="qmv_cli_out_")
    os.chdir(tmp)
    rnd = random.Random(15)
    n, k = 32, 256
    npy_write("w.npy", "<f4", (n, k), f32s([rnd.uniform(-1, 1) for _ in range(n * k)]))
    quantize("ref.safetensors", code=0)
    ref = open("ref.safetensors", "rb").read()

    # ---- write errors name the file and the reason (item 16) ----
    if os.path.exists("/dev/full"):
        p = quantize("/dev/full", code=2)
        check("/dev/full: write error: No space left on device" in p.stderr,
              f"write error names file and reason: {p.stderr}")

    # ---- character devices and FIFOs: written through, never replaced (item 7) ----
    p = quantize("/dev/null", code=0)
    check("--force" not in p.stderr, f"no --force advice for /dev/null: {p.stderr}")
    check(stat.S_ISCHR(os.stat("/dev/null").st_mode), "/dev/null is still a device")
    if os.geteuid() == 0:  # a device node of our own, so --force can be tried safely
        os.mknod("null_dev", stat.S_IFCHR | 0o666, os.makedev(1, 3))
        quantize("null_dev", "--force", code=0)
        check(stat.S_ISCHR(os.lstat("null_dev").st_mode), "--force keeps a device node a device")
        os.unlink("null_dev")
    os.mkfifo("pipe")
    for extra in ((), ("--force",)):
        got = []
        t = threading.Thread(target=read_fifo, args=("pipe", got), daemon=True)
        t.start()
        quantize("pipe", *extra, code=0)
        t.join(30)
        if t.is_alive() and stat.S_ISFIFO(os.lstat("pipe").st_mode):  # qmv never opened it
            os.close(os.open("pipe", os.O_WRONLY | os.O_NONBLOCK))
            t.join(5)
        check(got == [ref], f"FIFO {extra}: the reader gets the file's bytes")
        check(stat.S_ISFIFO(os.lstat("pipe").st_mode), f"FIFO {extra}: still a FIFO")
    os.unlink("pipe")

    # ---- symbolic links (item 9) ----
    os.symlink("nowhere.safetensors", "dangling.safetensors")
    p = quantize("dangling.safetensors", code=2)
    check("symbolic link to nothing" in p.stderr and
          os.path.islink("dangling.safetensors") and not os.path.exists("nowhere.safetensors"),
          f"dangling link kept without --force: {p.stderr}")
    quantize("dangling.safetensors", "--force", code=0)
    check(not os.path.islink("dangling.safetensors") and
          open("dangling.safetensors", "rb").read() == ref and
          not os.path.exists("nowhere.safetensors"), "--force replaces the link itself")

    # ---- --force keeps the mode (item 8) ----
    open("private.safetensors", "wb").write(b"old")
    os.chmod("private.safetensors", 0o600)
    quantize("private.safetensors", "--force", code=0)
    check(stat.S_IMODE(os.stat("private.safetensors").st_mode) == 0o600,
          f"mode kept: {oct(os.stat('private.safetensors').st_mode)}")

    # ---- temporary files of killed runs (item 10) ----
    dead = subprocess.Popen(["true"])
    dead.wait()
    stale = f"new.safetensors{TAG}{dead.pid}-Ab12Cd"
    live = f"new.safetensors{TAG}{os.getpid()}-Ab12Cd"
    for f in (stale, live):
        open(f, "wb").write(b"partial")
    quantize("new.safetensors", code=0)
    check(not os.path.exists(stale) and os.path.exists(live),
          f"stale temporary removed, a live process's kept: {temporaries()}")
    os.unlink(live)

    # ---- two runs, one new OUT: exactly one wins (item 6) ----
    for i in range(5):
        out = f"race{i}.safetensors"
        procs = [subprocess.Popen([QMV, "quantize", "--mode", "mxfp4", "w.npy", out],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for _ in range(2)]
        res = [(p.wait(), p.stderr.read()) for p in procs]
        codes = sorted(c for c, _ in res)
        check(codes == [0, 2] and all("already exists" in e for c, e in res if c == 2),
              f"race {i}: exit codes {codes}, stderr {[e for _, e in res]}")
    check(not temporaries(), f"no temporary files left: {temporaries()}")

    shutil.rmtree(tmp, ignore_errors=True)
    if cli_test.failures:
        print(f"{len(cli_test.failures)} check(s) failed")
        return 1
    print("all output-file checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
