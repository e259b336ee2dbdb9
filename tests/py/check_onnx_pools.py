"""check_onnx_pools: gq's pooling against onnxruntime on the corners the node suites barely
cover: AveragePool with count_include_pad where ceil_mode runs the last window past the
explicit pads (the divisor is the whole window), pads on one side only, dilations, strides
larger than the window, 1-D and 2-D, MaxPool with the same geometry, and global pools.

Each model is one node, run through gq-onnx-run ($GQ_BIN_DIR) on the CPU and, where a device
is found, with the OpenCL and Vulkan accelerators (which claim 1-D/2-D pools); every output
must match onnxruntime within 1e-5 relative. Where ceil_mode would start a last window in the
right padding, gq drops it as the spec's text, ONNX's shape inference and PyTorch do, and
onnxruntime 1.20 keeps it: there the windows both compute are compared."""
import itertools
import os
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import check_onnx_models as models  # noqa: E402  (run_gq, NoDevice, BIN)

try:
    import onnxruntime as ort
    from onnx import TensorProto, helper
except ImportError as e:
    print(f"onnx/onnxruntime not importable ({e}): skipped")
    sys.exit(77)

rng = np.random.default_rng(5)


def cases():
    for rank, (k, s, d, pads), ceil, cip in itertools.product(
            (1, 2),
            ((3, 2, 1, (1, 1)), (3, 2, 1, (0, 0)), (2, 3, 1, (0, 1)), (3, 2, 2, (1, 0)),
             (2, 2, 1, (1, 1))),
            (0, 1), (0, 1)):
        attrs = dict(kernel_shape=[k] * rank, strides=[s] * rank, ceil_mode=ceil,
                     pads=[pads[0]] * rank + [pads[1]] * rank)
        if d > 1:
            attrs["dilations"] = [d] * rank
        shape = [2, 3] + [7 + i for i in range(rank)]
        yield "AveragePool", shape, dict(attrs, count_include_pad=cip)
        if cip == 0:
            yield "MaxPool", shape, attrs
    for op in ("GlobalAveragePool", "GlobalMaxPool"):
        yield op, [2, 5, 9, 6], {}


def shape_spec(shape, attrs):
    """The output shape as the spec's text (opset 19+) and ONNX's shape inference give it."""
    if "kernel_shape" not in attrs:
        return tuple(shape[:2]) + (1,) * (len(shape) - 2)
    r = len(shape) - 2
    out = list(shape[:2])
    for i in range(r):
        k, s = attrs["kernel_shape"][i], attrs["strides"][i]
        d = attrs.get("dilations", [1] * r)[i]
        pb, pe = attrs["pads"][i], attrs["pads"][i + r]
        span = (k - 1) * d + 1
        num = shape[2 + i] + pb + pe - span
        o = (-(-num // s) if attrs.get("ceil_mode") else num // s) + 1
        if attrs.get("ceil_mode") and (o - 1) * s >= shape[2 + i] + pb:
            o -= 1  # the last window would start in the right padding
        out.append(o)
    return tuple(out)


def main():
    if not os.path.exists(models.BIN):
        print(f"no {models.BIN}: build gq-onnx-run first")
        return 1
    fails = n = 0
    backends = ["cpu", "opencl", "vulkan"]
    with tempfile.TemporaryDirectory() as tmp:
        for i, (op, shape, attrs) in enumerate(cases()):
            node = helper.make_node(op, ["x"], ["y"], **attrs)
            g = helper.make_graph([node], "pool", [helper.make_tensor_value_info(
                "x", TensorProto.FLOAT, shape)], [helper.make_tensor_value_info(
                    "y", TensorProto.FLOAT, None)])
            m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 19)])
            out = os.path.join(tmp, str(i))
            os.mkdir(out)
            path = os.path.join(out, "model.onnx")
            with open(path, "wb") as f:
                f.write(m.SerializeToString())
            x = rng.standard_normal(shape).astype(np.float32)
            want = ort.InferenceSession(path, providers=["CPUExecutionProvider"]).run(
                None, {"x": x})[0]
            for be in list(backends):
                try:
                    got = models.run_gq(path, {"x": x}, ["x"], out, be)[0]
                except models.NoDevice:
                    print(f"no {be} device: its pass is skipped")
                    backends.remove(be)
                    continue
                except RuntimeError as e:
                    print(f"FAIL {op} {attrs} on {be}: {e}")
                    fails += 1
                    continue
                n += 1
                w = want
                if got.shape != want.shape and shape_spec(shape, attrs) == got.shape:
                    # a last window that starts in the right padding: the spec (and ONNX's
                    # shape inference, and PyTorch) drop it, onnxruntime keeps it; the
                    # windows both have must agree
                    w = want[tuple(slice(0, d) for d in got.shape)]
                ok = got.shape == w.shape and np.allclose(got, w, rtol=1e-5, atol=1e-6)
                if not ok:
                    j = np.argmax(np.abs(got - w)) if got.shape == w.shape else 0
                    print(f"FAIL {op} {attrs} on {be}: {got.shape} vs {w.shape}, element {j}: "
                          f"{got.ravel()[j] if got.size else None} vs "
                          f"{w.ravel()[j] if w.size else None}")
                fails += not ok
    print(f"pools: {n} runs on {', '.join(backends)}, {fails} failures")
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
