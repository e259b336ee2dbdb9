"""check_onnx_control: gq's ONNX Loop and Scan against onnxruntime on models built here.

- loop_cumsum: Loop with a trip count and a condition the body turns false early (a running
  sum that stops past a threshold), a carried value whose shape grows each iteration
  (Concat), a scan output, and an outer value the body reads.
- loop_no_trip: Loop with only a condition (M omitted), counting up to an input-given
  bound.
- scan_rnn: Scan as old RNN exports use it: a state updated by tanh(x_t W + h R) over a
  sequence on axis 1, read in reverse, with scan outputs stacked on axis 1 and reversed.
- scan_two: Scan over two sequences on different axes, with no state.

Each runs through gq-onnx-run ($GQ_BIN_DIR) and onnxruntime; every output must match within
1e-5 relative (integers exactly). A Loop that would never end must be refused, not hang."""
import os
import subprocess
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import check_onnx_models as models  # noqa: E402  (run_gq, BIN)

try:
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper
except ImportError as e:
    print(f"onnx/onnxruntime not importable ({e}): skipped")
    sys.exit(77)

F, I64, B = TensorProto.FLOAT, TensorProto.INT64, TensorProto.BOOL
vi = helper.make_tensor_value_info
rng = np.random.default_rng(11)


def const(name, arr):
    return helper.make_node("Constant", [], [name], value=numpy_helper.from_array(arr, name))


def loop_cumsum():
    body = helper.make_graph(
        [helper.make_node("Add", ["s_in", "step"], ["s_out"]),
         helper.make_node("ReduceSum", ["s_out"], ["tot"], keepdims=0),
         const("lim", np.array(40.0, np.float32)),
         helper.make_node("Less", ["tot", "lim"], ["c_out"]),
         helper.make_node("Cast", ["i"], ["i_f"], to=F),
         helper.make_node("Unsqueeze", ["i_f", "ax0"], ["i_1"]),
         helper.make_node("Concat", ["hist_in", "i_1"], ["hist_out"], axis=0),
         helper.make_node("Mul", ["s_out", "scale"], ["scan_v"])],
        "body",
        [vi("i", I64, []), vi("c_in", B, []), vi("s_in", F, [3]), vi("hist_in", F, None)],
        [vi("c_out", B, []), vi("s_out", F, [3]), vi("hist_out", F, None),
         vi("scan_v", F, [3])])
    g = helper.make_graph(
        [const("M", np.array(20, np.int64)), const("cond", np.array(True)),
         const("hist0", np.zeros([0], np.float32)), const("ax0", np.array([0], np.int64)),
         helper.make_node("Loop", ["M", "cond", "s0", "hist0"], ["s_fin", "hist", "scans"],
                          body=body)],
        "loop_cumsum", [vi("s0", F, [3]), vi("step", F, [3]), vi("scale", F, [1])],
        [vi("s_fin", F, None), vi("hist", F, None), vi("scans", F, None)])
    feeds = {"s0": np.array([1, 2, 3], np.float32), "step": np.array([0.5, 1.5, 2.0], np.float32),
             "scale": np.array([2.0], np.float32)}
    return g, feeds


def loop_no_trip():
    body = helper.make_graph(
        [const("one", np.array(1, np.int64)),
         helper.make_node("Add", ["n_in", "one"], ["n_out"]),
         helper.make_node("Less", ["n_out", "bound"], ["c_out"])],
        "body", [vi("i", I64, []), vi("c_in", B, []), vi("n_in", I64, [])],
        [vi("c_out", B, []), vi("n_out", I64, [])])
    g = helper.make_graph(
        [const("cond", np.array(True)), const("n0", np.array(0, np.int64)),
         helper.make_node("Loop", ["", "cond", "n0"], ["n"], body=body)],
        "loop_no_trip", [vi("bound", I64, [])], [vi("n", I64, None)])
    return g, {"bound": np.array(7, np.int64)}


def scan_rnn():
    H, D = 4, 3
    body = helper.make_graph(
        [helper.make_node("MatMul", ["x_t", "W"], ["xw"]),
         helper.make_node("MatMul", ["h_in", "R"], ["hr"]),
         helper.make_node("Add", ["xw", "hr"], ["a"]),
         helper.make_node("Tanh", ["a"], ["h_out"]),
         helper.make_node("Identity", ["h_out"], ["y_t"])],
        "body", [vi("h_in", F, [2, H]), vi("x_t", F, [2, D])],
        [vi("h_out", F, [2, H]), vi("y_t", F, [2, H])])
    g = helper.make_graph(
        [helper.make_node("Scan", ["h0", "x"], ["h_fin", "ys"], body=body, num_scan_inputs=1,
                          scan_input_axes=[1], scan_input_directions=[1],
                          scan_output_axes=[1], scan_output_directions=[1])],
        "scan_rnn", [vi("h0", F, [2, H]), vi("x", F, [2, 5, D])],
        [vi("h_fin", F, None), vi("ys", F, None)],
        initializer=[numpy_helper.from_array(rng.standard_normal((D, H)).astype(np.float32), "W"),
                     numpy_helper.from_array(rng.standard_normal((H, H)).astype(np.float32) * 0.5,
                                             "R")])
    return g, {"h0": rng.standard_normal((2, H)).astype(np.float32),
               "x": rng.standard_normal((2, 5, D)).astype(np.float32)}


def scan_two():
    body = helper.make_graph(
        [helper.make_node("Mul", ["a_t", "b_t"], ["p_t"])],
        "body", [vi("a_t", F, [3]), vi("b_t", F, [3])], [vi("p_t", F, [3])])
    g = helper.make_graph(
        [helper.make_node("Scan", ["a", "b"], ["p"], body=body, num_scan_inputs=2,
                          scan_input_axes=[0, 1])],
        "scan_two", [vi("a", F, [4, 3]), vi("b", F, [3, 4])], [vi("p", F, None)])
    return g, {"a": rng.standard_normal((4, 3)).astype(np.float32),
               "b": rng.standard_normal((3, 4)).astype(np.float32)}


def endless():
    body = helper.make_graph(
        [helper.make_node("Identity", ["c_in"], ["c_out"]),
         helper.make_node("Identity", ["x_in"], ["x_out"])],
        "body", [vi("i", I64, []), vi("c_in", B, []), vi("x_in", F, [1])],
        [vi("c_out", B, []), vi("x_out", F, [1])])
    g = helper.make_graph(
        [const("cond", np.array(True)),
         helper.make_node("Loop", ["", "cond", "x"], ["y"], body=body)],
        "endless", [vi("x", F, [1])], [vi("y", F, None)])
    return g, {"x": np.ones([1], np.float32)}


def main():
    if not os.path.exists(models.BIN):
        print(f"no {models.BIN}: build gq-onnx-run first")
        return 1
    fails = 0
    with tempfile.TemporaryDirectory() as tmp:
        for make in (loop_cumsum, loop_no_trip, scan_rnn, scan_two):
            g, feeds = make()
            m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
            out = os.path.join(tmp, g.name)
            os.mkdir(out)
            path = os.path.join(out, "model.onnx")
            with open(path, "wb") as f:
                f.write(m.SerializeToString())
            want = ort.InferenceSession(path, providers=["CPUExecutionProvider"]).run(None, feeds)
            names = [i.name for i in g.input]
            try:
                got = models.run_gq(path, feeds, names, out)
            except RuntimeError as e:
                print(f"FAIL {g.name}: {e}")
                fails += 1
                continue
            for k, (a, w) in enumerate(zip(got, want)):
                ok = a.shape == w.shape and (np.array_equal(a, w) if w.dtype.kind in "iub" else
                                             np.allclose(a, w, rtol=1e-5, atol=1e-6))
                print(f"{'ok  ' if ok else 'FAIL'} {g.name} output {k}: {a.shape}"
                      + ("" if ok else f" gq {a.ravel()[:6]} ort {w.ravel()[:6]} {w.shape}"))
                fails += not ok
            if len(got) != len(want):
                print(f"FAIL {g.name}: {len(got)} outputs, want {len(want)}")
                fails += 1
        g, feeds = endless()
        m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
        path = os.path.join(tmp, "endless.onnx")
        with open(path, "wb") as f:
            f.write(m.SerializeToString())
        np.save(os.path.join(tmp, "in_x.npy"), feeds["x"])
        try:
            r = subprocess.run([models.BIN, path, tmp, os.path.join(tmp, "in_x.npy")],
                               capture_output=True, text=True, timeout=120)
            ok = r.returncode not in (0, 77) and r.returncode < 128 and "iterations" in r.stderr
            print(f"{'ok  ' if ok else 'FAIL'} endless loop refused: {r.stderr.strip()[-120:]}")
        except subprocess.TimeoutExpired:
            ok = False
            print("FAIL endless loop: still running after 120 s")
        fails += not ok
    print(f"control flow: {fails} failures")
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
