"""check_onnx_einsum: gq's ONNX Einsum against numpy.einsum on the forms the node suite does
not cover: implicit outputs, ellipses that broadcast, three operands, diagonals, labels
summed away, upper-case labels, integer types, and bad equations (which must be refused
with the cause named, not crash); f32 pairs both small (the direct loop) and large enough
for the GEMM path.

Each case is a one-node model built here with the onnx helper and run by gq-onnx-run
($GQ_BIN_DIR); results must match within 1e-5 relative (integers exactly)."""
import os
import subprocess
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import check_onnx_models as models  # noqa: E402  (run_gq, BIN)

from onnx import TensorProto, helper  # noqa: E402

rng = np.random.default_rng(7)

CASES = [
    ("ij,jk", [(3, 4), (4, 5)]),
    ("ij,jk->ki", [(3, 4), (4, 5)]),
    ("...ij,...jk->...ik", [(2, 1, 3, 4), (5, 4, 2)]),
    ("...i,i", [(2, 3, 4), (4,)]),
    ("ii->i", [(4, 4)]),
    ("bii->b", [(3, 4, 4)]),
    ("ij,jk,kl->il", [(2, 3), (3, 4), (4, 5)]),
    ("ijk->", [(2, 3, 4)]),
    ("Ab,bC->AC", [(2, 3), (3, 4)]),
    ("i,j->ij", [(3,), (5,)]),
    ("bhqd,bhkd->bhqk", [(2, 3, 5, 8), (2, 3, 6, 8)]),
    ("i...->...", [(3, 2, 2)]),
    # large enough for the f32 GEMM path (s_lowered): batch, rows, columns and k from
    # several labels, a broadcast batch, a label summed in one operand only, a diagonal,
    # an outer product, the output in another order; operands read in place or transposed
    ("bhqd,bhkd->bhqk", [(2, 3, 17, 32), (2, 3, 19, 32)]),
    ("...ij,...jk->...ik", [(2, 1, 13, 24), (5, 24, 9)]),
    ("ij,jk->ki", [(30, 40), (40, 50)]),
    ("ij,k->i", [(20, 30), (40,)]),
    ("ii,ij->j", [(40, 40), (40, 50)]),
    ("i,j->ij", [(64,), (80,)]),
    ("bij,bkj->bkij", [(3, 8, 9), (3, 10, 9)]),
    ("bji,bjk->bik", [(3, 30, 20), (3, 30, 40)]),  # a read transposed in place
    ("bji,bkj->bik", [(3, 30, 20), (3, 40, 30)]),  # both
]

BAD = [
    ("ij,jk->ik", [(3, 4), (5, 6)], "size"),
    ("ij->ijk", [(3, 4)], "not an input label"),
    ("ijk->i", [(3, 4)], "labels for an operand of rank 2"),
    ("ij,jk", [(3, 4)], "terms"),
    ("i1->i", [(3, 4)], "not a label"),
]


def model(eq, shapes, dtype):
    names = [f"x{i}" for i in range(len(shapes))]
    node = helper.make_node("Einsum", names, ["y"], equation=eq)
    g = helper.make_graph([node], "einsum",
                          [helper.make_tensor_value_info(n, dtype, s)
                           for n, s in zip(names, shapes)],
                          [helper.make_tensor_value_info("y", dtype, None)])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]), names


def main():
    if not os.path.exists(models.BIN):
        print(f"no {models.BIN}: build gq-onnx-run first")
        return 1
    fails = 0
    with tempfile.TemporaryDirectory() as tmp:
        for eq, shapes in CASES:
            for dtype, npt in ((TensorProto.FLOAT, np.float32), (TensorProto.INT64, np.int64)):
                m, names = model(eq, shapes, dtype)
                path = os.path.join(tmp, "m.onnx")
                with open(path, "wb") as f:
                    f.write(m.SerializeToString())
                feeds = {n: (rng.standard_normal(s) * 4).astype(npt) for n, s in zip(names, shapes)}
                want = np.einsum(eq, *[feeds[n] for n in names])
                try:
                    got = models.run_gq(path, feeds, names, tmp)[0]
                except RuntimeError as e:
                    print(f"FAIL {eq} {npt.__name__}: {e}")
                    fails += 1
                    continue
                ok = got.shape == want.shape and (
                    np.array_equal(got, want) if npt is np.int64 else
                    np.allclose(got, want, rtol=1e-5, atol=1e-5 * (np.abs(want).max() + 1)))
                print(f"{'ok  ' if ok else 'FAIL'} {eq} {npt.__name__} {got.shape}")
                fails += not ok
        for eq, shapes, why in BAD:
            m, names = model(eq, shapes, TensorProto.FLOAT)
            path = os.path.join(tmp, "m.onnx")
            with open(path, "wb") as f:
                f.write(m.SerializeToString())
            feeds = {n: np.ones(s, np.float32) for n, s in zip(names, shapes)}
            for n in names:
                np.save(os.path.join(tmp, f"in_{n}.npy"), feeds[n])
            r = subprocess.run([models.BIN, path, tmp] +
                               [os.path.join(tmp, f"in_{n}.npy") for n in names],
                               capture_output=True, text=True, timeout=60)
            ok = r.returncode not in (0, 77) and r.returncode < 128 and why in r.stderr
            print(f"{'ok  ' if ok else 'FAIL'} refused '{eq}': {r.stderr.strip()[-160:]}")
            fails += not ok
    print(f"einsum: {len(CASES) * 2 + len(BAD)} cases, {fails} failures")
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
