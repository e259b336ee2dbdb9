"""Real-shaped audio and vision models on gq's CPU ONNX executor, against onnxruntime.

Each model is built here, at test time, with the onnx helper API and weights from a fixed
seed: a 1-D conv keyword spotter on log-mel frames, a bidirectional LSTM classifier (with
and without sequence_lens), two GRUs (linear_before_reset 0 and 1, forward and reverse), a
small 2-D CNN, and a model whose If branches (one nested) read outer-scope values. Each runs at batch 1 and 32 through gq (tests/tools/onnx_run.c, built as
gq-onnx-run) and through onnxruntime's CPU execution provider; every output, intermediate
ones included, must have onnxruntime's dtype and shape and satisfy, element by element,

    |gq - ort| <= 1e-4 * (|ort| + 0.01 * max|ort|)

where max|ort| is over the whole output tensor: relative 1e-4, with a floor of 1e-6 of the
tensor's scale for elements near zero. The floor is there for intermediate activations
(conv outputs after Relu), where an element near zero is the difference of terms of the
tensor's scale and float summation order alone moves it by ~1e-7 of that scale.

The models are written to $GQ_ONNX_MODEL_DIR when that is set (the benchmark reuses them).
Skipped (77) when onnx/onnxruntime are not in the venv or gq-onnx-run was not built."""
import os
import subprocess
import sys
import tempfile

import numpy as np

try:
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper
except ImportError as e:  # the venv predates tests/requirements.txt's onnx pins
    print(f"onnx/onnxruntime not importable ({e}): skipped")
    sys.exit(77)

BIN = os.path.join(os.environ.get("GQ_BIN_DIR", "build"), "gq-onnx-run")
RTOL, FLOOR = 1e-4, 1e-2
OPSET = 17
N_MELS, FRAMES, N_CLASSES = 80, 98, 12


class Builder:
    """Collects nodes and initializers; weights come from one seeded generator."""

    def __init__(self, seed):
        self.rng = np.random.default_rng(seed)
        self.nodes, self.inits, self.n = [], [], 0

    def name(self, base):
        self.n += 1
        return f"{base}_{self.n}"

    def const(self, arr, base="w"):
        nm = self.name(base)
        self.inits.append(numpy_helper.from_array(np.asarray(arr), nm))
        return nm

    def weight(self, shape, fan_in):
        return self.const((self.rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)).astype(np.float32))

    def op(self, op_type, inputs, nout=1, **attrs):
        outs = [self.name(op_type.lower()) for _ in range(nout)]
        self.nodes.append(helper.make_node(op_type, inputs, outs, **attrs))
        return outs[0] if nout == 1 else outs

    def bn(self, x, c):
        r = self.rng
        return self.op("BatchNormalization",
                       [x, self.const(r.uniform(0.5, 1.5, c).astype(np.float32)),
                        self.const(r.uniform(-0.2, 0.2, c).astype(np.float32)),
                        self.const(r.uniform(-0.5, 0.5, c).astype(np.float32)),
                        self.const(r.uniform(0.5, 2.0, c).astype(np.float32))], epsilon=1e-5)

    def conv(self, x, cin, cout, k, group=1, **attrs):
        ks = k if isinstance(k, (list, tuple)) else [k]
        w = self.weight([cout, cin // group] + list(ks), cin // group * int(np.prod(ks)))
        b = self.const((self.rng.standard_normal(cout) * 0.1).astype(np.float32))
        return self.op("Conv", [x, w, b], group=group, kernel_shape=list(ks), **attrs)

    def gemm_softmax(self, x, fin, fout):
        w = self.weight([fout, fin], fin)
        b = self.const((self.rng.standard_normal(fout) * 0.1).astype(np.float32))
        logits = self.op("Gemm", [x, w, b], transB=1)
        return logits, self.op("Softmax", [logits], axis=-1)

    def model(self, name, inputs, outputs):
        """The graph outputs get the types shape inference finds for them."""
        g = helper.make_graph(self.nodes, name, inputs, [], self.inits)
        m = helper.make_model(g, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="gq-check")
        m.ir_version = 8
        vi = {v.name: v for v in onnx.shape_inference.infer_shapes(m).graph.value_info}
        m.graph.output.extend([vi[o] for o in outputs])
        onnx.checker.check_model(m, full_check=True)
        return m


def fin(name, shape, dtype=TensorProto.FLOAT):
    return helper.make_tensor_value_info(name, dtype, shape)


def kws_conv1d():
    """Log-mel [N, 80, T] -> Conv1d/BN/Relu/MaxPool, a depthwise-separable block, dilated
    conv, AveragePool -> GlobalAveragePool -> Gemm -> Softmax."""
    b = Builder(1)
    x = b.op("Relu", [b.bn(b.conv("mel", N_MELS, 64, 3, pads=[1, 1]), 64)])
    x = b.op("MaxPool", [x], kernel_shape=[2], strides=[2])
    x = b.conv(x, 64, 64, 3, group=64, pads=[1, 1])          # depthwise
    x = b.op("Relu", [b.bn(b.conv(x, 64, 96, 1), 96)])        # pointwise
    x = b.op("Relu", [b.conv(x, 96, 96, 3, dilations=[2], pads=[2, 2])])
    x = b.op("AveragePool", [x], kernel_shape=[3], strides=[2], pads=[1, 1],
             count_include_pad=0)
    feat = b.op("Flatten", [b.op("GlobalAveragePool", [x])], axis=1)
    logits, probs = b.gemm_softmax(feat, 96, N_CLASSES)
    m = b.model("kws_conv1d", [fin("mel", ["N", N_MELS, FRAMES])], [probs, logits, x])
    return m, lambda n, r: {"mel": r.standard_normal((n, N_MELS, FRAMES)).astype(np.float32)}


def kws_conv2d():
    """Log-mel as an image [N, 1, 80, T] -> 2-D conv stack (stride, SAME padding) -> Gemm."""
    b = Builder(2)
    x = b.op("Relu", [b.bn(b.conv("mel", 1, 16, [3, 3], pads=[1, 1, 1, 1]), 16)])
    x = b.op("MaxPool", [x], kernel_shape=[2, 2], strides=[2, 2])
    x = b.op("Relu", [b.bn(b.conv(x, 16, 32, [3, 3], strides=[2, 2], auto_pad="SAME_UPPER"), 32)])
    feat = b.op("Flatten", [b.op("GlobalAveragePool", [x])], axis=1)
    logits, probs = b.gemm_softmax(feat, 32, N_CLASSES)
    m = b.model("kws_conv2d", [fin("mel", ["N", 1, N_MELS, FRAMES])], [probs, x])
    return m, lambda n, r: {"mel": r.standard_normal((n, 1, N_MELS, FRAMES)).astype(np.float32)}


def cnn2d():
    """Image [N, 3, 32, 32] -> Conv2d/Relu/MaxPool x2 -> GlobalAveragePool -> Gemm -> Softmax."""
    b = Builder(3)
    x = b.op("Relu", [b.conv("img", 3, 16, [3, 3], pads=[1, 1, 1, 1])])
    x = b.op("MaxPool", [x], kernel_shape=[2, 2], strides=[2, 2])
    x = b.op("Relu", [b.bn(b.conv(x, 16, 32, [3, 3], pads=[1, 1, 1, 1]), 32)])
    x = b.op("MaxPool", [x], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])
    feat = b.op("Flatten", [b.op("GlobalAveragePool", [x])], axis=1)
    logits, probs = b.gemm_softmax(feat, 32, 10)
    m = b.model("cnn2d", [fin("img", ["N", 3, 32, 32])], [probs, x])
    return m, lambda n, r: {"img": r.standard_normal((n, 3, 32, 32)).astype(np.float32)}


def rnn_weights(b, gates, hidden, fin_, dirs):
    s = 1 / np.sqrt(hidden)
    u = lambda shape: b.const(b.rng.uniform(-s, s, shape).astype(np.float32))
    return (u([dirs, gates * hidden, fin_]), u([dirs, gates * hidden, hidden]),
            u([dirs, 2 * gates * hidden]))


def lstm(with_lens):
    """Features [N, T, 40] -> Transpose -> bidirectional LSTM(64) -> final states -> Gemm."""
    b, H, F, T = Builder(4 + with_lens), 64, 40, 50
    W, R, B = rnn_weights(b, 4, H, F, 2)
    x = b.op("Transpose", ["feat"], perm=[1, 0, 2])
    lens = "lens" if with_lens else ""
    y, yh, yc = b.op("LSTM", [x, W, R, B, lens], nout=3, hidden_size=H, direction="bidirectional")
    h = b.op("Reshape", [b.op("Transpose", [yh], perm=[1, 0, 2]),
                         b.const(np.array([0, 2 * H], np.int64), "shape")])
    logits, probs = b.gemm_softmax(h, 2 * H, N_CLASSES)
    ins = [fin("feat", ["N", T, F])] + ([fin("lens", ["N"], TensorProto.INT32)] if with_lens else [])
    m = b.model("lstm_lens" if with_lens else "lstm", ins, [probs, y, yh, yc])

    def feed(n, r):
        d = {"feat": r.standard_normal((n, T, F)).astype(np.float32)}
        if with_lens:
            d["lens"] = r.integers(1, T + 1, n).astype(np.int32)
        return d
    return m, feed


def gru(lbr, direction):
    """Features [N, T, 40] -> GRU(48) -> ReduceMean over time -> Gemm -> Softmax."""
    b, H, F, T = Builder(6 + lbr), 48, 40, 50
    W, R, B = rnn_weights(b, 3, H, F, 1)
    x = b.op("Transpose", ["feat"], perm=[1, 0, 2])
    h0 = b.const((b.rng.standard_normal((1, 1, H)) * 0.1).astype(np.float32), "h0")
    h0 = b.op("Expand", [h0, b.op("Concat", [b.const(np.array([1], np.int64)),
                                            b.op("Gather", [b.op("Shape", ["feat"]),
                                                            b.const(np.array([0], np.int64))]),
                                            b.const(np.array([H], np.int64))], axis=0)])
    y, yh = b.op("GRU", [x, W, R, B, "", h0], nout=2, hidden_size=H,
                 linear_before_reset=lbr, direction=direction)
    pooled = b.op("ReduceMean", [b.op("Squeeze", [y, b.const(np.array([1], np.int64))])],
                  axes=[0], keepdims=0)
    logits, probs = b.gemm_softmax(pooled, H, N_CLASSES)
    m = b.model(f"gru_lbr{lbr}_{direction}", [fin("feat", ["N", T, F])], [probs, y, yh])
    return m, lambda n, r: {"feat": r.standard_normal((n, T, F)).astype(np.float32)}


def rnn_lens():
    """sequence_lens (ties, 1 and T among them) on the other cells and directions: GRU
    bidirectional (linear_before_reset 0), GRU reverse (1), RNN reverse, LSTM reverse with
    peepholes and an initial state, every output of each."""
    b, F, T = Builder(9), 40, 50
    x = b.op("Transpose", ["feat"], perm=[1, 0, 2])
    outs = []
    for op, gates, H, dirs, attrs in (("GRU", 3, 24, 2, {"linear_before_reset": 0}),
                                      ("GRU", 3, 20, 1, {"linear_before_reset": 1}),
                                      ("RNN", 1, 16, 1, {}), ("LSTM", 4, 12, 1, {})):
        W, R, B = rnn_weights(b, gates, H, F, dirs)
        ins = [x, W, R, B, "lens"]
        if op == "LSTM":
            h0 = b.const((b.rng.standard_normal((dirs, 1, H)) * 0.1).astype(np.float32))
            n = b.op("Gather", [b.op("Shape", ["feat"]), b.const(np.array([0], np.int64))])
            h0 = b.op("Expand", [h0, b.op("Concat", [b.const(np.array([dirs], np.int64)), n,
                                                    b.const(np.array([H], np.int64))], axis=0)])
            ins += [h0, h0, b.const(b.rng.uniform(-0.5, 0.5, (dirs, 3 * H)).astype(np.float32))]
        outs += b.op(op, ins, nout=3 if op == "LSTM" else 2, hidden_size=H,
                     direction="bidirectional" if dirs == 2 else "reverse", **attrs)
    m = b.model("rnn_lens", [fin("feat", ["N", T, F]), fin("lens", ["N"], TensorProto.INT32)], outs)

    def feed(n, r):
        lens = r.integers(1, T + 1, n)
        lens[: min(n, 4)] = [T, 1, 7, 7][: min(n, 4)]
        return {"feat": r.standard_normal((n, T, F)).astype(np.float32),
                "lens": lens.astype(np.int32)}
    return m, feed


def if_branches():
    """If on the sign of the input's mean; the branches read outer values (x, the conv
    output, a weight) and the then-branch holds a nested If reading its grandparent's x.
    Batch 1 is fed a positive mean, batch 32 a negative one: both branches run."""
    b = Builder(8)
    feat = b.op("Relu", [b.conv("x", 4, 8, 3, pads=[1, 1])])
    cond = b.op("Greater", [b.op("ReduceMean", ["x"], keepdims=0), b.const(np.float32(0))])
    scale = b.const(np.float32(2.5), "scale")

    def graph(name, nodes, out):
        return helper.make_graph(nodes, name, [], [helper.make_tensor_value_info(out, TensorProto.FLOAT, None)])

    inner_then = graph("inner_then", [helper.make_node("Mul", [feat, scale], ["it"])], "it")
    inner_else = graph("inner_else", [helper.make_node("ReduceMax", ["x"], ["ie"], axes=[1],
                                                       keepdims=1)], "ie")
    then_g = graph("then", [
        helper.make_node("Greater", [scale, b.const(np.float32(1))], ["c2"]),
        helper.make_node("If", ["c2"], ["t_in"], then_branch=inner_then, else_branch=inner_else),
        helper.make_node("Sigmoid", ["t_in"], ["t_out"])], "t_out")
    else_g = graph("else", [helper.make_node("Tanh", [feat], ["e_out"])], "e_out")
    y = b.op("If", [cond], then_branch=then_g, else_branch=else_g)
    b.nodes[-1].output[0] = "y"
    pooled = b.op("Flatten", [b.op("GlobalAveragePool", ["y"])], axis=1)
    logits, probs = b.gemm_softmax(pooled, 8, 3)
    m = b.model("if_branches", [fin("x", ["N", 4, 20])], [probs, "y"])

    def feed(n, r):
        x = r.standard_normal((n, 4, 20)).astype(np.float32)
        return {"x": x + np.float32(0.5 if n == 1 else -0.5)}
    return m, feed


def fused():
    """The pairs gq's plan fuses into one step: MatMul + Add (the bias on either side) with
    and without Relu/Tanh after, Gemm + Sigmoid and + LeakyRelu, MatMul + Clip (constant
    bounds), a batched MatMul, and Conv + Add of a per-channel constant + HardSigmoid.
    FUSED_STEPS says how many steps gq must run it in."""
    b = Builder(9)
    bias = lambda n: b.const((b.rng.standard_normal(n) * 0.1).astype(np.float32), "b")
    h = b.op("Relu", [b.op("Add", [b.op("MatMul", ["x", b.weight([40, 64], 40)]), bias(64)])])
    h = b.op("Sigmoid", [b.op("Gemm", [h, b.weight([32, 64], 64), bias(32)], transB=1)])
    h = b.op("Add", [bias(24), b.op("MatMul", [h, b.weight([32, 24], 32)])])
    h = b.op("LeakyRelu", [b.op("Gemm", [h, b.weight([24, 16], 24), bias(16)])], alpha=0.1)
    h = b.op("Clip", [b.op("MatMul", [h, b.weight([16, 16], 16)]),
                      b.const(np.float32(-0.5)), b.const(np.float32(0.5))])
    t = b.op("Reshape", [h, b.const(np.array([0, 4, 4], np.int64), "shape")])
    t = b.op("Tanh", [b.op("Add", [b.op("MatMul", [t, b.weight([4, 8], 4)]), bias(8)])])
    c = b.op("Conv", [t, b.weight([6, 4, 3], 12)], kernel_shape=[3], pads=[1, 1])
    c = b.op("HardSigmoid", [b.op("Add", [c, b.const((b.rng.standard_normal((6, 1)) * 0.1)
                                                     .astype(np.float32), "b")])],
             alpha=0.3, beta=0.4)
    m = b.model("fused", [fin("x", ["N", 40])], [c, h])
    return m, lambda n, r: {"x": r.standard_normal((n, 40)).astype(np.float32)}


def conv_pool():
    """Conv(+act) -> MaxPool pairs gq runs as one step, at the edges: channels not a multiple
    of 4, odd sizes, a padded ceil_mode pool, overlapping and dilated windows, a strided
    conv without activation, a depthwise conv with LeakyRelu, a 1-D conv with BN + Sigmoid,
    a conv whose output is also a graph output (not fused), a window taller than 8 rows,
    grouped filters, and a strided conv whose rows are whole vectors."""
    b = Builder(10)
    x = b.op("Relu", [b.conv("img", 5, 6, [3, 3], pads=[1, 1, 1, 1])])
    a = b.op("MaxPool", [x], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1], ceil_mode=1)
    x = b.conv(a, 6, 7, [2, 3], strides=[2, 1])
    x = b.op("MaxPool", [x], kernel_shape=[2, 3], strides=[1, 1], dilations=[1, 2])
    x = b.op("LeakyRelu", [b.conv(x, 7, 7, [3, 3], group=7, pads=[1, 0, 1, 2])], alpha=0.2)
    c = b.op("MaxPool", [x], kernel_shape=[1, 2], strides=[1, 2], ceil_mode=1)
    y = b.op("Sigmoid", [b.bn(b.conv("seq", 6, 9, 5, strides=[2], pads=[2, 2]), 9)])
    y = b.op("MaxPool", [y], kernel_shape=[3], strides=[2], pads=[1, 1], ceil_mode=1)
    z = b.conv(y, 9, 5, 3, auto_pad="SAME_UPPER")
    zp = b.op("MaxPool", [z], kernel_shape=[2], auto_pad="VALID")
    # 2 input channels, a 2x2/2 pool whose last window passes the row's end; a stride-2
    # conv with a dilated, padded width under a window taller than 8 rows; groups of 5
    # filters (a block and a partial one); rows of whole vectors (run one by one)
    u = b.op("Relu", [b.conv("wide", 2, 7, [3, 3], pads=[1, 1, 1, 1])])
    u = b.op("MaxPool", [u], kernel_shape=[2, 2], strides=[2, 2], ceil_mode=1)
    v = b.conv("wide", 2, 9, [3, 3], strides=[2, 2], dilations=[1, 2], pads=[0, 2, 0, 1])
    v = b.op("MaxPool", [v], kernel_shape=[9, 2], strides=[1, 2])
    g = b.conv("wide", 2, 10, [3, 3], group=2, strides=[2, 2])
    t = b.op("Tanh", [b.conv("wide", 2, 6, [3, 3], strides=[2, 2], pads=[1, 2, 1, 2])])  # 24 wide
    m = b.model("conv_pool", [fin("img", ["N", 5, 23, 19]), fin("seq", ["N", 6, 37]),
                              fin("wide", ["N", 2, 20, 45])], [a, c, y, z, zp, u, v, g, t])
    return m, lambda n, r: {"img": r.standard_normal((n, 5, 23, 19)).astype(np.float32),
                            "seq": r.standard_normal((n, 6, 37)).astype(np.float32),
                            "wide": r.standard_normal((n, 2, 20, 45)).astype(np.float32)}


def einsum_attn():
    """Self-attention written in Einsums, as some exported models carry it: x [N, 32, 64] ->
    per-head projections "ntd,dhe->nhte", scores "nhqe,nhke->nhqk", Softmax, context, output
    projection "nhqe,hed->nqd"."""
    b, T, D, Hh, E = Builder(9), 32, 64, 4, 16
    w = [b.weight([D, Hh, E], D) for _ in range(3)]
    q, k, v = (b.op("Einsum", ["x", wi], equation="ntd,dhe->nhte") for wi in w)
    s = b.op("Mul", [b.op("Einsum", [q, k], equation="nhqe,nhke->nhqk"),
                     b.const(np.array(1 / np.sqrt(E), np.float32), "scale")])
    p = b.op("Softmax", [s], axis=-1)
    ctx = b.op("Einsum", [p, v], equation="nhqk,nhke->nhqe")
    y = b.op("Einsum", [ctx, b.weight([Hh, E, D], Hh * E)], equation="nhqe,hed->nqd")
    m = b.model("einsum_attn", [fin("x", ["N", T, D])], [y, p])
    return m, lambda n, r: {"x": r.standard_normal((n, T, D)).astype(np.float32)}


# Models whose pairs gq fuses: how many steps it runs them in (--profile lists them).
FUSED_STEPS = {"fused": 8, "kws_conv2d": 6, "cnn2d": 6, "conv_pool": 10}


MODELS = {
    "kws_conv1d": kws_conv1d,
    "kws_conv2d": kws_conv2d,
    "cnn2d": cnn2d,
    "lstm": lambda: lstm(False),
    "lstm_lens": lambda: lstm(True),
    "gru_lbr1_forward": lambda: gru(1, "forward"),
    "gru_lbr0_reverse": lambda: gru(0, "reverse"),
    "rnn_lens": rnn_lens,
    "if_branches": if_branches,
    "fused": fused,
    "conv_pool": conv_pool,
    "einsum_attn": einsum_attn,
}


class NoDevice(Exception):
    """gq-onnx-run --backend opencl found no OpenCL device (exit 77)."""


# The models' steps the OpenCL accelerator must run (the rest fall back to the CPU): half
# of them for the conv nets, the point of offloading them.
MIN_ON_DEVICE = {"kws_conv1d": 0.5, "kws_conv2d": 0.5, "cnn2d": 0.5}


def run_gq(model_path, feeds, names, outdir, backend="cpu", steps=None):
    """steps: a list that gets (steps on the device, steps) with --backend opencl."""
    paths = []
    for nm in names:
        p = os.path.join(outdir, f"in_{nm}.npy")
        np.save(p, feeds[nm])
        paths.append(p)
    r = subprocess.run([BIN, model_path, outdir, "--backend", backend] + paths,
                       capture_output=True, text=True, timeout=120)
    if r.returncode == 77 and backend != "cpu":
        raise NoDevice(r.stderr.strip())
    if r.returncode:
        raise RuntimeError(f"gq-onnx-run exit {r.returncode}: {r.stderr.strip()}")
    for line in r.stderr.splitlines():
        if steps is not None and line.startswith(f"gq-onnx-run: {backend} ran "):
            w = line.split()
            steps.extend([int(w[3]), int(w[5])])
    k = 0
    outs = []
    while os.path.exists(os.path.join(outdir, f"output_{k}.npy")):
        outs.append(np.load(os.path.join(outdir, f"output_{k}.npy")))
        k += 1
    return outs


def gq_steps(model_path, names, outdir):
    """The steps gq runs the model in (its --profile lines), over inputs run_gq left."""
    paths = [os.path.join(outdir, f"in_{nm}.npy") for nm in names]
    r = subprocess.run([BIN, model_path, outdir, "--repeat", "1", "--profile"] + paths,
                       capture_output=True, text=True, timeout=120)
    if r.returncode:
        raise RuntimeError(f"gq-onnx-run --profile exit {r.returncode}: {r.stderr.strip()}")
    return sum(1 for line in r.stderr.splitlines() if line.rstrip().endswith("%"))


def bound(want):
    w = np.abs(want.astype(np.float64))
    return RTOL * (w + FLOOR * (w.max() if w.size else 0.0))


def compare(got, want):
    """None when got matches want within the tolerance, else why not."""
    if got.dtype != want.dtype or got.shape != want.shape:
        return f"got {got.dtype}{got.shape}, want {want.dtype}{want.shape}"
    err = np.abs(got.astype(np.float64) - want)
    b = bound(want)
    bad = err > b
    if bad.any() or (np.isnan(got) != np.isnan(want)).any():
        i = int(np.argmax(err - b))
        return (f"{int(bad.sum())} of {bad.size} elements off; worst at {i}: "
                f"got {got.ravel()[i]!r}, want {want.ravel()[i]!r}")
    return None


def main(backend="cpu"):
    if not os.access(BIN, os.X_OK):
        print(f"{BIN} is not built: skipped")
        return 77
    threads = int(os.environ.get("GQ_ONNX_THREADS", "1"))
    so = ort.SessionOptions()
    so.intra_op_num_threads = so.inter_op_num_threads = threads
    tmp = tempfile.mkdtemp(prefix="gq-onnx-")
    save_dir = os.environ.get("GQ_ONNX_MODEL_DIR")
    failures, checked = [], 0
    for name, make in MODELS.items():
        model, feed = make()
        path = os.path.join(save_dir or tmp, f"{name}.onnx")
        onnx.save(model, path)
        sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
        names = [i.name for i in sess.get_inputs()]
        for batch in (1, 32):
            feeds = feed(batch, np.random.default_rng(100 + batch))
            want = sess.run(None, feeds)
            outdir = os.path.join(tmp, f"{name}_b{batch}")
            os.makedirs(outdir, exist_ok=True)
            steps = []
            try:
                got = run_gq(path, feeds, names, outdir, backend, steps)
            except NoDevice as e:
                print(f"no {backend} device ({e}): the {backend} pass is skipped")
                return 77
            except RuntimeError as e:
                failures.append(f"{name} batch {batch}: {e}")
                continue
            if len(got) != len(want):
                failures.append(f"{name} batch {batch}: {len(got)} outputs, want {len(want)}")
                continue
            worst = 0.0
            for k, (g, w) in enumerate(zip(got, want)):
                checked += 1
                why = compare(g, w)
                if why:
                    failures.append(f"{name} batch {batch} output {k}: {why}")
                elif g.size:
                    worst = max(worst, float(np.max(np.abs(g.astype(np.float64) - w) / bound(w))))
            if name in FUSED_STEPS and backend == "cpu" and batch == 1:
                n = gq_steps(path, names, outdir)
                if n != FUSED_STEPS[name]:
                    failures.append(f"{name}: {n} steps, want {FUSED_STEPS[name]} (pairs not "
                                    "fused)")
            dev = f", {steps[0]} of {steps[1]} steps on {backend}" if steps else ""
            if steps and steps[0] < MIN_ON_DEVICE.get(name, 0) * steps[1]:
                failures.append(f"{name} batch {batch}: {steps[0]} of {steps[1]} steps on "
                                f"{backend}, want {MIN_ON_DEVICE[name]:.0%}")
            print(f"{name:18s} batch {batch:2d}: {len(got)} outputs, worst error / tolerance "
                  f"= {worst:.3f}{dev}")
    for f in failures:
        print("FAIL", f)
    print(f"{backend}: {checked} outputs compared, {len(failures)} failures "
          f"(onnx {onnx.__version__}, onnxruntime {ort.__version__})")
    return 1 if failures else 0


if __name__ == "__main__":
    rc = main()
    if rc != 77:  # the same models with each accelerator, when its device is there
        for accel in ("opencl", "vulkan"):
            rc_ax = main(accel)
            rc = rc or (rc_ax if rc_ax != 77 else 0)
    sys.exit(rc)
