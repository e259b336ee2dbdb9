"""bench_onnx: gq's CPU ONNX executor / onnxruntime (CPU execution provider), in the same
run, on the models of tests/py/check_onnx_models.py at batch 1 and 32.

Both sides get the same number of threads (--threads, default 1): onnxruntime through
intra_op_num_threads (inter_op 1), gq through gq-onnx-run --threads (gq_par_set_threads: its
own kernels and OpenBLAS's GEMMs on that many threads; OPENBLAS_NUM_THREADS is set to the same
for the start-up). The two sides take turns, --rounds times (default 3, the side going first
alternating), each turn running once to warm up, then --repeat times; a side's time is the
median over its turns of each turn's median wall time per run, so a burst of load on this
shared machine lands on one turn of one side rather than on a whole side. gq is timed inside gq-onnx-run (model
loading, planning and .npy I/O excluded), onnxruntime around InferenceSession.run.

    venv/bin/python tests/bench/bench_onnx.py [--quick] [--threads N] [--repeat N] [--rounds N] [--models a,b]
                                               [--backend opencl|vulkan]

--backend opencl also times gq with the OpenCL accelerator (gq-onnx-run --backend opencl,
the first OpenCL device: PoCL on a machine without a GPU) and prints its time over gq's
CPU executor's ("cl/cpu", lower is better for OpenCL) and their geometric mean;
--backend vulkan the same with the Vulkan accelerator (the backend's pick of device:
lavapipe on a machine without a GPU), as "vk/cpu".

Needs the tests' venv (scripts/pyenv.sh) and gq-onnx-run in $GQ_BIN_DIR. Prints a ratio per
model and batch (lower is better for gq) and their geometric mean."""
import argparse
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "py"))
import check_onnx_models as models  # noqa: E402  (the models and their feeds)

try:
    import onnx
    import onnxruntime as ort
except ImportError as e:
    print(f"bench_onnx: onnxruntime not importable ({e}): not measured")
    sys.exit(0)


def time_ort(path, feeds, threads, repeat):
    so = ort.SessionOptions()
    so.intra_op_num_threads, so.inter_op_num_threads = threads, 1
    sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    sess.run(None, feeds)
    ms = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        sess.run(None, feeds)
        ms.append((time.perf_counter() - t0) * 1e3)
    return float(np.median(ms))


def time_gq(path, feeds, names, threads, repeat, tmp, backend="cpu"):
    paths = []
    for nm in names:
        p = os.path.join(tmp, f"in_{nm}.npy")
        np.save(p, feeds[nm])
        paths.append(p)
    env = dict(os.environ, OPENBLAS_NUM_THREADS=str(threads))
    r = subprocess.run([models.BIN, path, tmp, "--backend", backend, "--threads", str(threads),
                        "--repeat", str(repeat)] + paths,
                       capture_output=True, text=True, env=env, timeout=600)
    if r.returncode:
        raise RuntimeError(f"gq-onnx-run: {r.stderr.strip()}")
    fields = dict(kv.split("=") for kv in r.stdout.split()[1:])
    return float(fields["median"])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=0)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--backend", choices=["cpu", "opencl", "vulkan"], default="cpu")
    ap.add_argument("--models", help="comma-separated model names (default: all of them)")
    a = ap.parse_args()
    only = set(a.models.split(",")) if a.models else None
    if only and only - set(models.MODELS):
        print(f"bench_onnx: no model {', '.join(sorted(only - set(models.MODELS)))}; "
              f"there are {', '.join(models.MODELS)}")
        return 2
    cl = a.backend != "cpu"
    tag = {"opencl": "cl", "vulkan": "vk"}.get(a.backend, "")
    if not os.access(models.BIN, os.X_OK):
        print(f"bench_onnx: {models.BIN} is not built: not measured")
        return 0
    tmp = tempfile.mkdtemp(prefix="gq-bench-onnx-")
    print(f"bench_onnx: gq / onnxruntime {ort.__version__} (CPU EP), {a.threads} thread(s), "
          f"median wall time per run, {1 if a.quick else max(a.rounds, 1)} rounds")
    print(f"{'model':18s} {'batch':>5s} {'gq ms':>9s} {'ort ms':>9s} {'ratio':>7s}"
          + (f" {tag + ' ms':>9s} {tag + '/cpu':>7s}" if cl else ""))
    ratios, cl_ratios = [], []
    for name, make in models.MODELS.items():
        if only and name not in only:
            continue
        model, feed = make()
        path = os.path.join(tmp, f"{name}.onnx")
        onnx.save(model, path)
        names = [i.name for i in ort.InferenceSession(path, providers=["CPUExecutionProvider"]).get_inputs()]
        for batch in (1, 32):
            repeat = a.repeat or (5 if a.quick else (200 if batch == 1 else 20))
            feeds = feed(batch, np.random.default_rng(batch))
            t_ort, t_gq = [], []
            for r in range(1 if a.quick else max(a.rounds, 1)):
                turns = [lambda: t_ort.append(time_ort(path, feeds, a.threads, repeat)),
                         lambda: t_gq.append(time_gq(path, feeds, names, a.threads, repeat, tmp))]
                for turn in (turns if r % 2 == 0 else turns[::-1]):
                    turn()
            t_ort, t_gq = float(np.median(t_ort)), float(np.median(t_gq))
            ratios.append(t_gq / t_ort)
            extra = ""
            if cl:
                t_cl = time_gq(path, feeds, names, a.threads, repeat, tmp, a.backend)
                cl_ratios.append(t_cl / t_gq)
                extra = f" {t_cl:9.3f} {t_cl / t_gq:7.2f}"
            print(f"{name:18s} {batch:5d} {t_gq:9.3f} {t_ort:9.3f} {t_gq / t_ort:7.2f}{extra}")
    print(f"geometric mean gq/ort: {float(np.exp(np.mean(np.log(ratios)))):.2f}")
    if cl:
        print(f"geometric mean {a.backend}/cpu: {float(np.exp(np.mean(np.log(cl_ratios)))):.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
