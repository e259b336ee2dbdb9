"""Every tensor op through the real CLI (`gpuq run`, embedded cluster) on random and edge
inputs, compared with NumPy; plus .npy interchange both ways (NumPy writes, gpuq reads
C-order, Fortran-order and big-endian files; gpuq writes, NumPy reads)."""
import os
import subprocess
import warnings
import sys
import tempfile

import numpy as np

np.seterr(all="ignore")
warnings.simplefilter("ignore", RuntimeWarning)

BIN = os.path.join(os.environ.get("GQ_BIN_DIR", "build"), "gpuq")
rng = np.random.default_rng(7)
tmp = tempfile.mkdtemp(prefix="gq-py-")
failures = []
count = 0


def run(op_stages, inputs, nout=1):
    """op_stages: [(op, {param: value})]; returns the outputs as arrays."""
    args = [BIN, "run"]
    for k, (op, params) in enumerate(op_stages):
        args += ["--then", op] if k else [op]
        for name, v in params.items():
            if isinstance(v, bool):
                v = "true" if v else "false"
            args += ["--param", f"{name}={v}"]
    for i, x in enumerate(inputs):
        p = os.path.join(tmp, f"in{i}.npy")
        np.save(p, x)
        args += ["--in", p]
    outs = [os.path.join(tmp, f"out{i}.npy") for i in range(nout)]
    for p in outs:
        args += ["--out", p]
    args += ["--broker", "local"]
    r = subprocess.run(args, capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(args)}\nexit {r.returncode}: {r.stderr.strip()}")
    return [np.load(p) for p in outs]


def check(name, got, want, rtol=0.0, atol=0.0):
    global count
    count += 1
    ok = got.dtype == want.dtype and got.shape == want.shape
    if ok:
        if np.issubdtype(want.dtype, np.floating):
            ok = np.allclose(got, want, rtol=rtol, atol=atol, equal_nan=True)
        else:
            ok = np.array_equal(got, want)
    if not ok:
        failures.append(f"{name}: got {got.dtype}{got.shape} {got.ravel()[:6]}, "
                        f"want {want.dtype}{want.shape} {want.ravel()[:6]}")


def rand(shape, dtype):
    if np.issubdtype(dtype, np.floating):
        return (rng.standard_normal(shape) * 10).astype(dtype)
    info = np.iinfo(dtype)
    return rng.integers(max(info.min, -1000), min(info.max, 1000) + 1, size=shape, dtype=dtype)


shapes = [(), (1,), (7,), (3, 5), (2, 3, 4), (0, 3), (2, 1, 3, 1, 2)]
pairs = [((3, 4), (4,)), ((3, 1), (1, 5)), ((2, 1, 4), (3, 1)), ((5,), ()), ((1, 1), (2, 3))]

for dt in (np.float32, np.float64, np.int32):
    for a_shape, b_shape in pairs + [(s, s) for s in shapes]:
        a, b = rand(a_shape, dt), rand(b_shape, dt)
        check(f"add {dt.__name__} {a_shape}+{b_shape}", run([("tensor.add", {})], [a, b])[0],
              a + b)
        check(f"mul {dt.__name__} {a_shape}*{b_shape}", run([("tensor.mul", {})], [a, b])[0],
              a * b)

for dt in (np.float32, np.float64):
    for shape in shapes:
        x = rand(shape, dt)
        want = (x.astype(np.float64) * 1.5 - 2.25).astype(dt)
        check(f"scale {dt.__name__} {shape}",
              run([("tensor.scale", {"factor": 1.5, "offset": -2.25})], [x])[0], want)
        check(f"clamp {dt.__name__} {shape}",
              run([("tensor.clamp", {"lo": -3.0, "hi": 4.5})], [x])[0],
              np.clip(x, dt(-3.0), dt(4.5)))

for dt in (np.float32, np.float64, np.float16, np.int16, np.int32, np.uint8):
    for shape in [(7,), (3, 5), (2, 3, 4), (4, 0)]:
        x = rand(shape, dt)
        for axis in range(-len(shape), len(shape)):
            for keep in (False, True):
                p = {"axis": axis, "keepdims": keep}
                tag = f"{dt.__name__}{shape} axis={axis} keepdims={keep}"
                if np.issubdtype(dt, np.integer):
                    s_want = x.sum(axis=axis, keepdims=keep, dtype=np.int64)
                    m_want = x.mean(axis=axis, keepdims=keep, dtype=np.float64)
                else:
                    s_want = x.astype(np.float64).sum(axis=axis, keepdims=keep).astype(dt)
                    m_want = x.astype(np.float64).mean(axis=axis, keepdims=keep).astype(dt) \
                        if x.shape[axis] else np.full(s_want.shape, np.nan, dtype=dt)
                tol = 1e-3 if dt == np.float16 else 1e-6
                check(f"sum {tag}", run([("tensor.sum", p)], [x])[0], s_want, rtol=tol, atol=tol)
                with np.errstate(all="ignore"):
                    check(f"mean {tag}", run([("tensor.mean", p)], [x])[0], m_want, rtol=tol,
                          atol=tol)
                if x.shape[axis]:
                    check(f"max {tag}", run([("tensor.max", p)], [x])[0],
                          x.max(axis=axis, keepdims=keep))

names = {np.float32: "f32", np.float64: "f64", np.float16: "f16", np.int16: "i16",
         np.int32: "i32", np.uint8: "u8"}


def cast_ref(x, dt):
    if np.issubdtype(dt, np.integer):
        info = np.iinfo(dt)
        xf = np.nan_to_num(x.astype(np.float64), nan=0.0, posinf=info.max, neginf=info.min)
        if np.issubdtype(x.dtype, np.floating):
            xf = np.trunc(xf)
        return np.clip(xf, info.min, info.max).astype(dt)
    return x.astype(dt)


for src in names:
    x = rand((4, 9), src)
    if np.issubdtype(src, np.floating):
        x.flat[:6] = [np.nan, np.inf, -np.inf, 70000.0, -1e9, 2.5]
        x = x.astype(src)
    for dst, dname in names.items():
        with np.errstate(all="ignore"):
            want = cast_ref(x, dst)
        check(f"cast {src.__name__}->{dname}", run([("tensor.cast", {"to": dname})], [x])[0],
              want)

# pipeline on one worker
x = rand((6, 10), np.float32)
want = np.clip(x, -5, 5).astype(np.float64).max(axis=1).astype(np.float32)
check("pipeline clamp->max", run([("tensor.clamp", {"lo": -5.0, "hi": 5.0}),
                                  ("tensor.max", {"axis": 1})], [x])[0], want)

# .npy interchange: Fortran order and big-endian inputs written by NumPy
x = np.asfortranarray(rand((3, 4), np.float32))
p = os.path.join(tmp, "f.npy")
np.save(p, x)
check("fortran-order input", run([("tensor.scale", {"factor": 2.0})], [x])[0], x * 2)
xb = rand((5,), np.float64).astype(">f8")
check("big-endian input", run([("tensor.scale", {"factor": 1.0})], [xb])[0],
      xb.astype("<f8"))

print(f"{count} checks against NumPy, {len(failures)} failed")
for f in failures[:20]:
    print("FAIL", f)
sys.exit(1 if failures else 0)
