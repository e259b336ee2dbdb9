#!/usr/bin/env python3
"""The README's model: a small audio-event classifier, trained at set-up time on log-mel
features that gpuq itself computes. Standard library only, deterministic.

  gen DIR N          N synthetic recordings per class (tone, sweep, noise, voice, dtmf, clicks),
                     varied in rate, pitch, level and length, as DIR/<class>_<i>.wav
  fit MELDIR OUT     reads the log-mel features gpuq wrote for them (MELDIR/<class>_<i>.npy,
                     f32[80, T]), fits a nearest-centroid classifier on standardized per-band
                     mean and spread over time, reports its accuracy on held-out recordings,
                     and writes it as an ONNX model (OUT, opset 13) with OUT.labels
  show MODEL OUTDIR  prints the top class of every probability output (OUTDIR/*.npy)

The model takes one log-mel spectrogram f32[80, T] (any T) and gives class probabilities
f32[1, classes]: ReduceMean over time, the spread (sqrt of the mean squared deviation),
Concat, standardize (Sub, Div), Gemm, Softmax. The ONNX file is written by a few lines of
protobuf encoding below, so the set-up needs no Python packages."""
import array
import math
import os
import random
import struct
import sys
import wave

CLASSES = ["tone", "sweep", "noise", "voice", "dtmf", "clicks"]
RATES = [8000, 16000, 22050, 44100, 48000]


def write_wav(path, rate, x):
    with wave.open(path, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(b"".join(struct.pack("<h", int(round(max(-1.0, min(1.0, v)) * 32767)))
                               for v in x))


def synth(cls, rnd):
    """One recording of class cls: (rate, samples)."""
    rate = rnd.choice(RATES if cls != "dtmf" else [8000, 16000])
    n = int(rate * rnd.uniform(0.8, 1.6))
    amp = 10 ** (rnd.uniform(-9, 0) / 20)
    two_pi = 2 * math.pi
    if cls == "tone":
        f = rnd.uniform(200, 1500)
        parts = [(f * k, 1 / k) for k in range(1, rnd.randint(2, 4) + 1)]
        x = [amp * 0.4 * sum(a * math.sin(two_pi * fk * i / rate) for fk, a in parts)
             for i in range(n)]
    elif cls == "sweep":
        f0, f1 = rnd.uniform(80, 300), rnd.uniform(0.3, 0.45) * rate
        k = math.log(f1 / f0) / (n / rate)
        x = [amp * 0.5 * math.sin(two_pi * f0 * (math.exp(k * i / rate) - 1) / k)
             for i in range(n)]
    elif cls == "noise":
        b = [0.0] * 3
        x = []
        for _ in range(n):
            w = rnd.uniform(-1, 1)
            b[0] = 0.99765 * b[0] + w * 0.0990460
            b[1] = 0.96300 * b[1] + w * 0.2965164
            b[2] = 0.57000 * b[2] + w * 1.0526913
            x.append(amp * 0.15 * (b[0] + b[1] + b[2] + w * 0.1848))
    elif cls == "voice":
        f0 = rnd.uniform(90, 220)
        fm1, fm2 = rnd.uniform(500, 900), rnd.uniform(1000, 1600)
        hs = [h for h in range(1, 30) if f0 * h < rate / 2]
        gains = [(1.0 if abs(f0 * h - fm1) < 200 or abs(f0 * h - fm2) < 250 else 0.15) / h
                 for h in hs]
        rate_env = rnd.uniform(2, 5)
        x = [amp * 0.25 * 0.5 * (1 - math.cos(two_pi * rate_env * i / rate)) *
             sum(g * math.sin(two_pi * f0 * h * i / rate) for h, g in zip(hs, gains))
             for i in range(n)]
    elif cls == "dtmf":
        lows, highs = [697, 770, 852, 941], [1209, 1336, 1477, 1633]
        keys = [(rnd.choice(lows), rnd.choice(highs)) for _ in range(rnd.randint(3, 5))]
        seg = n // len(keys)
        x = []
        for i in range(n):
            lo, hi = keys[min(i // seg, len(keys) - 1)]
            on = (i % seg) < seg * 0.7
            x.append(amp * 0.35 * (math.sin(two_pi * lo * i / rate) +
                                   math.sin(two_pi * hi * i / rate)) if on else 0.0)
    else:  # clicks
        x = [0.0] * n
        for _ in range(rnd.randint(2, 6)):
            at = rnd.randrange(0, n - 400)
            tau = rnd.uniform(10, 60) * rate / 44100
            for j in range(400):
                x[at + j] += amp * 0.9 * math.exp(-j / tau) * (1 if j % 2 else -1)
    floor = 10 ** (rnd.uniform(-70, -55) / 20)
    return rate, [v + floor * rnd.uniform(-1, 1) for v in x]


def gen(out, per_class):
    os.makedirs(out, exist_ok=True)
    rnd = random.Random(20261123)
    for cls in CLASSES:
        for i in range(per_class):
            rate, x = synth(cls, rnd)
            write_wav(os.path.join(out, "%s_%02d.wav" % (cls, i)), rate, x)
    print("wrote %d recordings in %d classes to %s" % (per_class * len(CLASSES), len(CLASSES), out))


def read_npy(path):
    """f32 or f64 little-endian C-order .npy: (shape, flat list)."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:6] != b"\x93NUMPY":
        raise ValueError("%s: not a .npy file" % path)
    hlen = struct.unpack("<H", data[8:10])[0] if data[6] == 1 else struct.unpack("<I", data[8:12])[0]
    start = 10 if data[6] == 1 else 12
    header = data[start:start + hlen].decode("latin1")
    d = eval(header, {"__builtins__": {}}, {"True": True, "False": False})  # a dict literal
    if d["fortran_order"] or d["descr"] not in ("<f4", "<f8"):
        raise ValueError("%s: want little-endian f32/f64 C order, got %s" % (path, d))
    a = array.array("f" if d["descr"] == "<f4" else "d")
    a.frombytes(data[start + hlen:])
    return tuple(d["shape"]), a


def features(path):
    """Per-band mean and spread over time of a log-mel f32[80, T]: what the model computes."""
    shape, a = read_npy(path)
    bands, t = shape[-2], shape[-1]
    mean, spread = [], []
    for b in range(bands):
        row = a[b * t:(b + 1) * t]
        m = sum(row) / t
        mean.append(m)
        spread.append(math.sqrt(sum((v - m) ** 2 for v in row) / t))
    return mean + spread


def standardize_params(rows):
    n, d = len(rows), len(rows[0])
    mu = [sum(r[j] for r in rows) / n for j in range(d)]
    sd = [math.sqrt(sum((r[j] - mu[j]) ** 2 for r in rows) / n) + 1e-3 for j in range(d)]
    return mu, sd


def fit_centroids(rows, labels, mu, sd):
    z = [[(v - m) / s for v, m, s in zip(r, mu, sd)] for r in rows]
    cents = []
    for c in range(len(CLASSES)):
        mine = [zi for zi, l in zip(z, labels) if l == c]
        cents.append([sum(col) / len(mine) for col in zip(*mine)])
    return cents


def predict(row, mu, sd, cents):
    z = [(v - m) / s for v, m, s in zip(row, mu, sd)]
    return min(range(len(cents)), key=lambda c: sum((a - b) ** 2 for a, b in zip(z, cents[c])))


# ---- ONNX protobuf, by hand (field numbers from onnx.proto) ----

def _varint(v):
    out = bytearray()
    v &= (1 << 64) - 1
    while True:
        b = v & 0x7F
        v >>= 7
        out.append(b | (0x80 if v else 0))
        if not v:
            return bytes(out)


def _key(field, wire):
    return _varint(field << 3 | wire)


def _int(field, v):
    return _key(field, 0) + _varint(v)


def _bytes(field, b):
    if isinstance(b, str):
        b = b.encode()
    return _key(field, 2) + _varint(len(b)) + b


def _float(field, v):
    return _key(field, 5) + struct.pack("<f", v)


def tensor(name, dims, values):
    raw = struct.pack("<%df" % len(values), *values)
    return b"".join(_int(1, d) for d in dims) + _int(2, 1) + _bytes(8, name) + _bytes(9, raw)


def attr_int(name, v):
    return _bytes(1, name) + _int(3, v) + _int(20, 2)


def attr_ints(name, vs):
    return _bytes(1, name) + b"".join(_int(8, v) for v in vs) + _int(20, 7)


def attr_float(name, v):
    return _bytes(1, name) + _float(2, v) + _int(20, 1)


def node(op, ins, outs, name, attrs=()):
    return (b"".join(_bytes(1, i) for i in ins) + b"".join(_bytes(2, o) for o in outs) +
            _bytes(3, name) + _bytes(4, op) + b"".join(_bytes(5, a) for a in attrs))


def value_info(name, dims):
    shape = b"".join(_bytes(1, _int(1, d) if isinstance(d, int) else _bytes(2, d)) for d in dims)
    tensor_type = _int(1, 1) + _bytes(2, shape)
    return _bytes(1, name) + _bytes(2, _bytes(1, tensor_type))


def write_model(path, bands, mu, sd, cents):
    d, k = 2 * bands, len(cents)
    # Nearest centroid as a linear layer: argmin |z - c|^2 = argmax (c.z - |c|^2 / 2); the
    # logits are scaled so the softmax is confident where the distances differ clearly.
    scale = 0.5
    w = [scale * cents[c][j] for j in range(d) for c in range(k)]  # [d, k], row-major
    b = [-scale * 0.5 * sum(v * v for v in cents[c]) for c in range(k)]
    inits = [tensor("mu", [d, 1], mu), tensor("sd", [d, 1], sd), tensor("W", [d, k], w),
             tensor("B", [k], b)]
    nodes = [
        node("ReduceMean", ["mel"], ["mean"], "mean_t", [attr_ints("axes", [1]), attr_int("keepdims", 1)]),
        node("Sub", ["mel", "mean"], ["dev"], "deviation"),
        node("Mul", ["dev", "dev"], ["dev2"], "square"),
        node("ReduceMean", ["dev2"], ["var"], "var_t", [attr_ints("axes", [1]), attr_int("keepdims", 1)]),
        node("Sqrt", ["var"], ["spread"], "spread"),
        node("Concat", ["mean", "spread"], ["feat"], "features", [attr_int("axis", 0)]),
        node("Sub", ["feat", "mu"], ["centred"], "centre"),
        node("Div", ["centred", "sd"], ["z"], "scale"),
        node("Transpose", ["z"], ["zt"], "row", [attr_ints("perm", [1, 0])]),
        node("Gemm", ["zt", "W", "B"], ["logits"], "classify"),
        node("Softmax", ["logits"], ["probs"], "probabilities", [attr_int("axis", 1)]),
    ]
    graph = (b"".join(_bytes(1, n) for n in nodes) + _bytes(2, "audio_events") +
             b"".join(_bytes(5, t) for t in inits) +
             _bytes(11, value_info("mel", [bands, "T"])) + _bytes(12, value_info("probs", [1, k])))
    model = (_int(1, 8) + _bytes(2, "gpuq examples/make_classifier.py") + _bytes(7, graph) +
             _bytes(8, _bytes(1, "") + _int(2, 13)))
    with open(path, "wb") as f:
        f.write(model)
    with open(path + ".labels", "w") as f:
        f.write("\n".join(CLASSES) + "\n")


def fit(meldir, out):
    rows, labels = [], []
    for name in sorted(os.listdir(meldir)):
        cls = name.rsplit("_", 1)[0]
        if name.endswith(".npy") and cls in CLASSES:
            rows.append(features(os.path.join(meldir, name)))
            labels.append(CLASSES.index(cls))
    if not rows:
        raise SystemExit("fit: no <class>_<i>.npy features in %s" % meldir)
    # Held-out check: every third recording of each class is kept out of the fit.
    held = [i % 3 == 2 for i in range(len(rows))]
    tr = [r for r, h in zip(rows, held) if not h]
    tl = [l for l, h in zip(labels, held) if not h]
    mu, sd = standardize_params(tr)
    cents = fit_centroids(tr, tl, mu, sd)
    test = [(r, l) for r, l, h in zip(rows, labels, held) if h]
    right = sum(predict(r, mu, sd, cents) == l for r, l in test)
    print("classifier: %d features, %d classes; held-out accuracy %d/%d" %
          (len(rows[0]), len(CLASSES), right, len(test)))
    mu, sd = standardize_params(rows)
    cents = fit_centroids(rows, labels, mu, sd)
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    write_model(out, len(rows[0]) // 2, mu, sd, cents)
    print("wrote %s (%d bytes) and %s.labels" % (out, os.path.getsize(out), out))


def show(model, outdir):
    with open(model + ".labels") as f:
        labels = [l.strip() for l in f if l.strip()]
    for name in sorted(os.listdir(outdir)):
        if not name.endswith(".npy"):
            continue
        _, p = read_npy(os.path.join(outdir, name))
        best = max(range(len(p)), key=lambda c: p[c])
        print("  %-28s %-7s (p = %.2f)" % (name[:-4], labels[best], p[best]))


def main(argv):
    if len(argv) == 4 and argv[1] == "gen":
        gen(argv[2], int(argv[3]))
    elif len(argv) == 4 and argv[1] == "fit":
        fit(argv[2], argv[3])
    elif len(argv) == 4 and argv[1] == "show":
        show(argv[2], argv[3])
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
