"""The dsp.* filter and level ops through the real CLI (`gpuq run`, embedded cluster),
compared with what users already trust: scipy.signal (convolve, lfilter, sosfilt,
resample_poly), librosa (resample, preemphasis, util.frame) and NumPy, on random and edge
inputs; chunked streaming equals one pass; loudness against the EBU Tech 3341/3342
expectations; bad params give errors naming op and param.

Tolerances (|got - want| <= atol + rtol * |want|, scaled by the signal's peak):
  f64 filters and polyphase resampling: 1e-9 relative to the output's peak (we run in
  double, scipy too; the difference is summation order); f32: 1e-5 relative to the peak
  (scipy runs f32 in f32, we in double then round once); soxr: 1e-6 (same libsoxr engine
  as librosa's python-soxr); chunked == one-shot: exact for the polyphase resampler and
  the IIR filters, 1e-12 relative for FIR (partial sums split across chunks);
  loudness: +-0.1 LU (Tech 3341), LRA +-1 LU (Tech 3342), true peak -0.4..+0.2 dB."""
import os
import subprocess
import sys
import tempfile
import warnings

import numpy as np
import scipy.signal as ss

warnings.simplefilter("ignore")
import librosa  # noqa: E402

np.seterr(all="ignore")

BIN = os.path.join(os.environ.get("GQ_BIN_DIR", "build"), "gpuq")
rng = np.random.default_rng(11)
tmp = tempfile.mkdtemp(prefix="gq-dspf-")
failures = []
count = 0


def _args(op, params, inputs, nout):
    args = [BIN, "run", op]
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
    return args + ["--broker", "local"], outs


def run(op, params, inputs, nout=1):
    """One op through the CLI; returns its outputs as arrays."""
    args, outs = _args(op, params, inputs, nout)
    r = subprocess.run(args, capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(args)}\nexit {r.returncode}: {r.stderr.strip()}")
    res = [np.load(p) for p in outs]
    return res if nout > 1 else res[0]


def fails(name, op, params, inputs, frags, nout=1):
    """The op must be refused with a message holding every fragment."""
    global count
    count += 1
    args, _ = _args(op, params, inputs, nout)
    r = subprocess.run(args, capture_output=True, text=True, timeout=60)
    msg = r.stderr.strip()
    if r.returncode == 0 or not all(f in msg for f in frags):
        failures.append(f"{name}: exit {r.returncode}, message {msg!r} lacks one of {frags}")


def check(name, got, want, rtol=0.0, atol=0.0, scaled=True):
    """allclose with atol scaled by the reference's peak (scaled=True)."""
    global count
    count += 1
    ok = got.dtype == want.dtype and got.shape == want.shape
    if ok and want.size:
        peak = float(np.nanmax(np.abs(want[np.isfinite(want)]))) if np.isfinite(want).any() else 1
        a = atol * max(peak, 1e-30) if scaled else atol
        ok = np.allclose(got, want, rtol=rtol, atol=a, equal_nan=True)
    if not ok:
        err = np.nanmax(np.abs(got.astype(np.float64) - want)) if got.shape == want.shape else "-"
        failures.append(f"{name}: got {got.dtype}{got.shape} {got.ravel()[:4]}, want "
                        f"{want.dtype}{want.shape} {want.ravel()[:4]}; max err {err}")


def expect(name, cond, what=""):
    global count
    count += 1
    if not cond:
        failures.append(f"{name}: {what}")


def tol(dt):
    return 1e-9 if dt == np.float64 else 1e-5


def sig(shape, dt, scale=1.0):
    return (rng.standard_normal(shape) * scale).astype(dt)


def rows(f, x, *rest):
    """Applies a 1-D reference to every row of x [..., T]."""
    flat = x.reshape(-1, x.shape[-1])
    out = [f(r, *rest) for r in flat]
    return np.stack(out).reshape(x.shape[:-1] + out[0].shape)


# ---- dsp.resample: polyphase against scipy.signal.resample_poly ----
for up, down in [(160, 441), (3, 2), (1, 1), (2, 1), (1, 3), (147, 160), (4, 6)]:
    for T in [1, 2, 7, 101, 1009]:
        for dt in (np.float32, np.float64):
            x = sig((T,), dt)
            want = ss.resample_poly(x, up, down).astype(dt)
            check(f"resample poly {up}/{down} T={T} {dt.__name__}",
                  run("dsp.resample", {"up": up, "down": down}, [x]), want, atol=tol(dt))
x = sig((2, 3, 4410), np.float32)
check("resample poly batch [2,3,4410]", run("dsp.resample", {"up": 160, "down": 441}, [x]),
      ss.resample_poly(x, 160, 441, axis=-1).astype(np.float32), atol=1e-5)
x = sig((1000,), np.float64)
check("resample poly beta=8.6", run("dsp.resample", {"up": 2, "down": 3, "beta": 8.6}, [x]),
      ss.resample_poly(x, 2, 3, window=("kaiser", 8.6)), atol=1e-9)
for sr in (44100, 48000, 22050, 8000):
    x = sig((2, sr // 3 + 7), np.float64)
    check(f"resample polyphase sr={sr} -> 16000 (librosa res_type=polyphase)",
          run("dsp.resample", {"sr": sr, "target_sr": 16000, "res_type": "polyphase"}, [x]),
          librosa.resample(x, orig_sr=sr, target_sr=16000, res_type="polyphase"), atol=1e-9)

# ---- dsp.resample: libsoxr against librosa.resample (python-soxr, same engine) ----
for sr in (44100, 48000, 22050, 8000):
    for dt in (np.float32, np.float64):
        for T in (1, 999, sr + 13):
            x = sig((2, T), dt, 0.5)
            want = librosa.resample(x, orig_sr=sr, target_sr=16000)
            check(f"resample soxr_hq {sr}->16000 T={T} {dt.__name__}",
                  run("dsp.resample", {"sr": sr, "target_sr": 16000}, [x]), want, atol=1e-6)
x = sig((3001,), np.float32, 0.5)
for q in ("soxr_vhq", "soxr_mq", "soxr_lq", "soxr_qq"):
    check(f"resample {q} 44100->16000",
          run("dsp.resample", {"sr": 44100, "target_sr": 16000, "res_type": q}, [x]),
          librosa.resample(x, orig_sr=44100, target_sr=16000, res_type=q), atol=1e-6)
check("resample soxr up/down = 3/2", run("dsp.resample", {"up": 3, "down": 2,
                                                          "res_type": "soxr_hq"}, [x]),
      librosa.resample(x, orig_sr=2, target_sr=3), atol=1e-6)
# Full scale and silence.
x = np.sign(sig((4410,), np.float32)).astype(np.float32)
check("resample soxr full-scale", run("dsp.resample", {"sr": 44100, "target_sr": 16000}, [x]),
      librosa.resample(x, orig_sr=44100, target_sr=16000), atol=1e-6)
z = np.zeros((2, 500), np.float32)
check("resample poly silence", run("dsp.resample", {"up": 160, "down": 441}, [z]),
      np.zeros((2, 182), np.float32))

# ---- dsp.resample: streaming polyphase, chunks == one pass ----
for up, down, dt in [(160, 441, np.float32), (3, 2, np.float64), (1, 1, np.float64),
                     (2, 7, np.float32)]:
    x = sig((2, 3000), dt)
    one = run("dsp.resample", {"up": up, "down": down}, [x])
    cuts = [0, 1, 1, 2, 500, 501, 1997, 3000]
    parts, state, pos = [], None, 0
    for k in range(len(cuts) - 1):
        c = x[:, cuts[k]:cuts[k + 1]]
        p = {"up": up, "down": down, "stream": True, "pos": pos,
             "final": k == len(cuts) - 2}
        y, state = run("dsp.resample", p, [c] + ([state] if state is not None else []), nout=2)
        parts.append(y)
        pos += c.shape[-1]
    got = np.concatenate(parts, axis=-1)
    check(f"resample stream {up}/{down} {dt.__name__} chunks == one pass", got, one)
    expect(f"resample stream {up}/{down} state", state.dtype == np.float64 and
           state[0, -1] == 3000, f"state {state.dtype} {state[:, -1]}")
# Without the final flag the stream holds back the outputs that need future input.
x = sig((1000,), np.float64)
y, st = run("dsp.resample", {"up": 1, "down": 2, "stream": True}, [x], nout=2)
y2, _ = run("dsp.resample", {"up": 1, "down": 2, "stream": True, "pos": 1000, "final": True},
            [np.zeros(0), st], nout=2)
check("resample stream flush with an empty chunk", np.concatenate([y, y2]),
      ss.resample_poly(x, 1, 2), atol=1e-9)
# NaN stays local in the polyphase path; soxr answers the row all NaN.
x = sig((2, 2000), np.float64)
x[0, 1000] = np.nan
y = run("dsp.resample", {"up": 1, "down": 2}, [x])
bad = np.flatnonzero(np.isnan(y[0]))
expect("resample poly NaN is local", len(bad) > 0 and bad.min() >= 500 - 11 and
       bad.max() <= 500 + 11 and np.isfinite(y[1]).all(), f"NaN at {bad[:3]}..{bad[-3:]}")
check("resample poly NaN: far outputs unchanged", y[0, :480],
      ss.resample_poly(np.nan_to_num(x[0]), 1, 2)[:480], atol=1e-9)
y = run("dsp.resample", {"sr": 44100, "target_sr": 16000}, [x])
expect("resample soxr NaN row all NaN", np.isnan(y[0]).all() and np.isfinite(y[1]).all())

# ---- dsp.fir against scipy.signal.convolve / lfilter ----
for dt in (np.float32, np.float64):
    for T, K in [(1, 1), (1, 5), (5, 1), (7, 3), (4, 9), (97, 4), (1000, 64), (4099, 257),
                 (50, 101), (2048, 48)]:
        x = sig((2, T), dt)
        h = rng.standard_normal(K)
        for mode in ("full", "same", "valid"):
            want = rows(lambda r: ss.convolve(r.astype(np.float64), h, mode), x).astype(dt)
            for method in ("auto", "direct", "fft"):
                check(f"fir {mode} {method} T={T} K={K} {dt.__name__}",
                      run("dsp.fir", {"mode": mode, "method": method}, [x, h]), want,
                      atol=tol(dt))
x = sig((3, 2, 257), np.float32)
h = rng.standard_normal(31).astype(np.float32)
check("fir batch [3,2,257] f32 taps", run("dsp.fir", {"mode": "same"}, [x, h]),
      rows(lambda r: np.convolve(r.astype(np.float64), h, "same"), x).astype(np.float32),
      atol=1e-5)
# stream: lfilter(h, 1, x, zi), and chunks == one pass
for K, method in [(1, "direct"), (5, "direct"), (5, "fft"), (200, "auto")]:
    h = rng.standard_normal(K)
    x = sig((2, 1500), np.float64)
    zi = rng.standard_normal((2, K - 1))
    y, zf = run("dsp.fir", {"mode": "stream", "method": method}, [x, h, zi], nout=2)
    wy, wz = ss.lfilter(h, [1.0], x, zi=zi)
    check(f"fir stream K={K} {method} y", y, wy, atol=1e-9)
    check(f"fir stream K={K} {method} zf", zf, wz, atol=1e-9)
    parts, state = [], None
    for a, b in [(0, 0), (0, 1), (1, 3), (3, 700), (700, 1500)]:
        ins = [x[:, a:b], h] + ([state] if state is not None else [])
        y, state = run("dsp.fir", {"mode": "stream", "method": method}, ins, nout=2)
        parts.append(y)
    one, zone = run("dsp.fir", {"mode": "stream", "method": method}, [x, h], nout=2)
    check(f"fir stream K={K} {method} chunks == one pass", np.concatenate(parts, -1), one,
          atol=1e-12)
    check(f"fir stream K={K} {method} final state", state, zone, atol=1e-12)
# NaN touches exactly the outputs whose taps see it, whatever the method.
x = sig((4000,), np.float32)
x[2000] = np.nan
h = rng.standard_normal(100)
for method in ("direct", "fft"):
    y = run("dsp.fir", {"mode": "full", "method": method}, [x, h])
    bad = np.flatnonzero(np.isnan(y))
    expect(f"fir NaN {method}", len(bad) == 100 and bad[0] == 2000, f"NaN at {bad[:3]}")

# ---- dsp.sos against scipy.signal.sosfilt ----
designs = [ss.butter(4, 0.2, output="sos"), ss.cheby1(6, 1, [0.1, 0.4], "bandpass",
                                                      output="sos"),
           ss.ellip(3, 0.5, 40, 0.3, "highpass", output="sos")]
for i, sos in enumerate(designs):
    for dt in (np.float32, np.float64):
        x = sig((2, 3, 801), dt)
        want = ss.sosfilt(sos, x.astype(np.float64)).astype(dt)
        check(f"sos design {i} {dt.__name__}", run("dsp.sos", {}, [x, sos]), want, atol=tol(dt))
    x = sig((2, 1000), np.float64)
    zi = rng.standard_normal((2, sos.shape[0], 2))
    y, zf = run("dsp.sos", {}, [x, sos, zi], nout=2)
    wy, wz = ss.sosfilt(sos, x, zi=np.moveaxis(zi, 1, 0))
    check(f"sos design {i} zi y", y, wy, atol=1e-9)
    check(f"sos design {i} zf", zf, np.moveaxis(wz, 0, 1), atol=1e-9)
    one, zone = run("dsp.sos", {"stream": True}, [x, sos], nout=2)
    parts, state = [], None
    for a, b in [(0, 1), (1, 1), (1, 333), (333, 1000)]:
        ins = [x[:, a:b], sos] + ([state] if state is not None else [])
        y, state = run("dsp.sos", {"stream": True}, ins, nout=2)
        parts.append(y)
    check(f"sos design {i} chunks == one pass", np.concatenate(parts, -1), one)
    check(f"sos design {i} chunked final state", state, zone)
sos = designs[0].copy()
sos2 = sos * 2.0  # a0 = 2: normalised per section
x = sig((500,), np.float64)
check("sos a0 != 1 normalised", run("dsp.sos", {}, [x, sos2]), ss.sosfilt(sos, x), atol=1e-9)
check("sos length 1", run("dsp.sos", {}, [x[:1], sos]), ss.sosfilt(sos, x[:1]), atol=1e-9)
check("sos silence", run("dsp.sos", {}, [np.zeros(64), sos]), np.zeros(64))

# ---- dsp.lfilter against scipy.signal.lfilter ----
for i, (b, a) in enumerate([ss.butter(3, 0.3), ([0.5, 0.2], [1.0, -0.3, 0.1, 0.05]),
                            ([1.0, 2.0, 1.0], [2.0, 0.4]), ([3.0], [1.5]),
                            (np.ones(7) / 7, [1.0])]):
    b, a = np.asarray(b, float), np.asarray(a, float)
    for dt in (np.float32, np.float64):
        x = sig((2, 777), dt)
        want = ss.lfilter(b, a, x.astype(np.float64)).astype(dt)
        check(f"lfilter {i} {dt.__name__}", run("dsp.lfilter", {}, [x, b, a]), want,
              atol=tol(dt))
    n = max(len(a), len(b)) - 1
    x = sig((3, 500), np.float64)
    zi = rng.standard_normal((3, n))
    y, zf = run("dsp.lfilter", {}, [x, b, a, zi], nout=2)
    wy, wz = ss.lfilter(b, a, x, zi=zi)
    check(f"lfilter {i} zi y", y, wy, atol=1e-9)
    check(f"lfilter {i} zf", zf, wz, atol=1e-9)
    one, zone = run("dsp.lfilter", {"stream": True}, [x, b, a], nout=2)
    parts, state = [], None
    for lo, hi in [(0, 2), (2, 250), (250, 500)]:
        ins = [x[:, lo:hi], b, a] + ([state] if state is not None else [])
        y, state = run("dsp.lfilter", {"stream": True}, ins, nout=2)
        parts.append(y)
    check(f"lfilter {i} chunks == one pass", np.concatenate(parts, -1), one)
    check(f"lfilter {i} chunked final state", state, zone)
for b, a in [([1.0, 0.5], [1.0]), ([1.0, 0.5], [1.0, 0.1])]:
    x = sig((300,), np.float64)
    x[100] = np.inf
    check(f"lfilter Inf as scipy b={b} a={a}", run("dsp.lfilter", {}, [x, b, a]),
          ss.lfilter(b, a, x), atol=1e-9)
x = sig((300,), np.float64)
x[100] = np.nan
check("sos NaN as scipy", run("dsp.sos", {}, [x, designs[0]]), ss.sosfilt(designs[0], x),
      atol=1e-9)

# ---- dsp.preemphasis against librosa.effects.preemphasis ----
for dt in (np.float32, np.float64):
    for T in (1, 2, 50, 1001):
        x = sig((2, T), dt)
        if T > 1:
            want = librosa.effects.preemphasis(x)
        else:
            want = (x + 2 * x - x).astype(dt)  # zi extrapolates a single sample as x[0]
        check(f"preemphasis T={T} {dt.__name__}", run("dsp.preemphasis", {}, [x]), want,
              atol=tol(dt))
x = sig((2, 1000), np.float64)
zi = rng.standard_normal((2, 1))
y, zf = run("dsp.preemphasis", {"coef": 0.5}, [x, zi], nout=2)
wy, wz = librosa.effects.preemphasis(x, coef=0.5, zi=zi, return_zf=True)
check("preemphasis coef=0.5 zi y", y, wy, atol=1e-12)
check("preemphasis coef=0.5 zf", zf, wz, atol=1e-12)
one, zone = run("dsp.preemphasis", {"stream": True}, [x], nout=2)
y1, s1 = run("dsp.preemphasis", {"stream": True}, [x[:, :400]], nout=2)
y2, s2 = run("dsp.preemphasis", {}, [x[:, 400:], s1], nout=2)
check("preemphasis chunks == one pass", np.concatenate([y1, y2], -1), one)
check("preemphasis chunked state", s2, zone)

# ---- dsp.gain, dsp.normalize ----
for dt in (np.float32, np.float64):
    x = sig((3, 100), dt)
    check(f"gain db=-6 factor=2 {dt.__name__}", run("dsp.gain", {"db": -6.0, "factor": 2.0}, [x]),
          (x.astype(np.float64) * 2 * 10 ** (-6 / 20)).astype(dt), atol=tol(dt))
    x = sig((2, 3, 100), dt)
    x[1, 2] = 0
    p = np.abs(x.astype(np.float64)).max(-1, keepdims=True)
    want = np.where(p > 0, x * (10 ** (-1 / 20) / np.where(p > 0, p, 1)), x).astype(dt)
    check(f"normalize peak -1 dBFS {dt.__name__} (silent row stays)",
          run("dsp.normalize", {"target_db": -1.0}, [x]), want, atol=tol(dt))
    r = np.sqrt((x.astype(np.float64) ** 2).mean(-1, keepdims=True))
    want = np.where(r > 0, x * (10 ** (-20 / 20) / np.where(r > 0, r, 1)), x).astype(dt)
    check(f"normalize rms -20 dBFS {dt.__name__}",
          run("dsp.normalize", {"mode": "rms", "target_db": -20.0}, [x]), want, atol=tol(dt))
    p2 = np.abs(x.astype(np.float64)).max((-2, -1), keepdims=True)
    check(f"normalize peak axes=2 {dt.__name__}", run("dsp.normalize", {"axes": 2}, [x]),
          (x / p2).astype(dt), atol=tol(dt))
x = sig((2, 50), np.float32)
x[0, 3] = np.nan
y = run("dsp.normalize", {}, [x])
expect("normalize NaN row all NaN, other row fine", np.isnan(y[0]).all() and
       np.allclose(y[1], x[1] / np.abs(x[1]).max()))
check("librosa.util.normalize agrees", run("dsp.normalize", {}, [x[1:]]),
      librosa.util.normalize(x[1:], axis=-1), atol=1e-6)

# ---- dsp.frame, dsp.overlap_add ----
for dt in (np.float32, np.float64):
    for T, fl, hop in [(10, 10, 1), (100, 16, 4), (101, 7, 13), (1, 1, 1), (64, 3, 100)]:
        x = sig((2, T), dt)
        want = librosa.util.frame(x, frame_length=fl, hop_length=hop)
        got = run("dsp.frame", {"frame_length": fl, "hop_length": hop}, [x])
        check(f"frame T={T} fl={fl} hop={hop} {dt.__name__}", got, np.ascontiguousarray(want))
        got2 = run("dsp.frame", {"frame_length": fl, "hop_length": hop, "frames_last": False},
                   [x])
        check(f"frame frames_last=false T={T}", got2, np.ascontiguousarray(np.swapaxes(want, -1,
                                                                                         -2)))
        n = (want.shape[-1] - 1) * hop + fl
        ola = np.zeros((2, n))
        for f in range(want.shape[-1]):
            ola[:, f * hop:f * hop + fl] += want[..., f]
        check(f"overlap_add T={T} fl={fl} hop={hop} {dt.__name__}",
              run("dsp.overlap_add", {"hop_length": hop}, [want]), ola.astype(dt),
              atol=tol(dt))
        check(f"overlap_add frames_last=false T={T}",
              run("dsp.overlap_add", {"hop_length": hop, "frames_last": False}, [got2]),
              ola.astype(dt), atol=tol(dt))
x = sig((3, 120), np.float32)
fr = run("dsp.frame", {"frame_length": 12, "hop_length": 12}, [x])
check("overlap_add(frame(x)) == x when hop == frame_length",
      run("dsp.overlap_add", {"hop_length": 12}, [fr]), x)

# ---- dsp.loudness: EBU Tech 3341 / 3342 expectations (engine: libebur128) ----


def tone(db, seconds, sr, ch=2, f=1000.0):
    t = np.arange(int(round(seconds * sr))) / sr
    return np.tile(10 ** (db / 20) * np.sin(2 * np.pi * f * t), (ch, 1))


def near(name, got, want, lo, hi):
    expect(name, want + lo <= got <= want + hi, f"got {got}, want {want} {lo:+}/{hi:+}")


for sr in (48000, 44100):
    L = run("dsp.loudness", {"sr": sr}, [tone(-23, 20, sr).astype(np.float32)])
    expect(f"loudness shape sr={sr}", L.shape == (5,) and L.dtype == np.float64, f"{L.shape}")
    near(f"3341 test 1 integrated sr={sr}", L[0], -23.0, -0.1, 0.1)
    near(f"3341 test 1 max momentary sr={sr}", L[2], -23.0, -0.1, 0.1)
    near(f"3341 test 1 max short-term sr={sr}", L[3], -23.0, -0.1, 0.1)
sr = 48000
L = run("dsp.loudness", {"sr": sr}, [tone(-33, 20, sr)])
near("3341 test 2 integrated -33", L[0], -33.0, -0.1, 0.1)
x = np.concatenate([tone(-36, 10, sr), tone(-23, 60, sr), tone(-36, 10, sr)], axis=1)
L = run("dsp.loudness", {"sr": sr}, [x])
near("3341 test 4 gating integrated", L[0], -23.0, -0.1, 0.1)
x = np.concatenate([tone(-26, 20, sr), tone(-20, 20.1, sr), tone(-26, 20, sr)], axis=1)
L = run("dsp.loudness", {"sr": sr}, [x])
near("3341 test 5 integrated", L[0], -23.0, -0.1, 0.1)
x = np.concatenate([tone(-20, 20, sr), tone(-30, 20, sr)], axis=1)
L = run("dsp.loudness", {"sr": sr}, [x.astype(np.float32)])
near("3342 test 1 LRA 10", L[1], 10.0, -1.0, 1.0)
x = np.concatenate([tone(-20, 20, sr), tone(-15, 20, sr)], axis=1)
L = run("dsp.loudness", {"sr": sr}, [x])
near("3342 test 2 LRA 5", L[1], 5.0, -1.0, 1.0)
# True peak: a sine at fs/4 sampled 45 degrees off its crests reads -3 dB in samples.
n = np.arange(sr)
x = np.tile(np.sin(2 * np.pi * n / 4 + np.pi / 4), (2, 1))
L = run("dsp.loudness", {"sr": sr}, [x])
near("true peak of a 0 dBTP sine sampled at -3 dBFS", L[4], 0.0, -0.4, 0.2)
L = run("dsp.loudness", {"sr": sr}, [tone(-6, 5, sr)])
near("true peak of a -6 dBFS 1 kHz sine", L[4], -6.0, -0.4, 0.2)
mono = tone(-23, 10, sr, ch=1)
near("mono -23 dBFS sine: -26 LUFS", run("dsp.loudness", {"sr": sr}, [mono])[0], -26.0, -0.1,
     0.1)
near("mono dual_mono: -23 LUFS", run("dsp.loudness", {"sr": sr, "dual_mono": True},
                                     [mono])[0], -23.0, -0.1, 0.1)
b = np.stack([tone(-23, 5, sr), tone(-30, 5, sr), np.zeros((2, 5 * sr))])
b[1, 0, 100] = np.nan
L = run("dsp.loudness", {"sr": sr}, [b])
expect("loudness batch [3,2,T]", L.shape == (3, 5) and abs(L[0, 0] + 23) < 0.1 and
       np.isnan(L[1]).all() and L[2, 0] == -np.inf and L[2, 4] == -np.inf, f"{L}")
L = run("dsp.loudness", {"sr": sr}, [tone(-23, 0.2, sr)])
expect("loudness of 200 ms: no gating block", L[0] == -np.inf and L[2] == -np.inf, f"{L}")

# ---- bad params: named at admission ----
x = sig((100,), np.float32)
fails("resample up=0", "dsp.resample", {"up": 0, "down": 3}, [x], ["dsp.resample", "'up'", "0"])
fails("resample target_sr=0", "dsp.resample", {"sr": 44100, "target_sr": 0}, [x],
      ["dsp.resample", "'target_sr'", "> 0"])
fails("resample no rates", "dsp.resample", {}, [x], ["dsp.resample", "'sr'", "'up'"])
fails("resample both pairs", "dsp.resample", {"sr": 44100, "target_sr": 16000, "up": 1,
                                              "down": 2}, [x], ["dsp.resample", "not both"])
fails("resample stream soxr", "dsp.resample", {"sr": 44100, "target_sr": 16000, "stream": True},
      [x], ["dsp.resample", "'stream'", "polyphase", "opaque"], nout=2)
fails("resample poly huge ratio", "dsp.resample", {"sr": 96001, "target_sr": 16000,
                                                   "res_type": "polyphase"}, [x],
      ["dsp.resample", "'res_type'", "soxr_hq"])
fails("resample pos without stream", "dsp.resample", {"up": 1, "down": 2, "pos": 5}, [x],
      ["dsp.resample", "'pos'", "stream"])
_, st = run("dsp.resample", {"up": 1, "down": 2, "stream": True}, [x], nout=2)
fails("resample pos mismatch", "dsp.resample", {"up": 1, "down": 2, "stream": True, "pos": 7},
      [x, st], ["dsp.resample", "'pos' = 7", "position 100"], nout=2)
fails("resample state shape", "dsp.resample", {"up": 1, "down": 2, "stream": True, "pos": 100},
      [x, st[:-1]], ["dsp.resample", "input 1 (state)", "must have shape"], nout=2)
fails("fir empty taps", "dsp.fir", {}, [x, np.zeros(0)], ["dsp.fir", "taps", "empty"])
fails("fir zi without stream", "dsp.fir", {}, [x, np.ones(3), np.zeros(2)],
      ["dsp.fir", "'mode'", "stream"])
fails("fir zi shape", "dsp.fir", {"mode": "stream"}, [x, np.ones(3), np.zeros(3)],
      ["dsp.fir", "input 2 (zi)", "[2]"], nout=2)
fails("fir bad mode", "dsp.fir", {"mode": "circular"}, [x, np.ones(3)], ["dsp.fir", "'mode'"])
fails("sos not [n,6]", "dsp.sos", {}, [x, np.ones((2, 5))], ["dsp.sos", "input 1 (sos)",
                                                            "[n_sections, 6]"])
fails("sos zi shape", "dsp.sos", {}, [x, designs[1], np.zeros((2, 2))],
      ["dsp.sos", "input 2 (zi)", "[6,2]"], nout=2)
bad = designs[0].copy()
bad[1, 3] = 0
fails("sos a0 = 0", "dsp.sos", {}, [x, bad], ["dsp.sos", "section 1", "a0 = 0"])
fails("lfilter a[0] = 0", "dsp.lfilter", {}, [x, np.ones(2), np.array([0.0, 1.0])],
      ["dsp.lfilter", "a[0] = 0"])
fails("lfilter zi shape", "dsp.lfilter", {}, [x, np.ones(3), np.ones(1), np.zeros(1)],
      ["dsp.lfilter", "input 3 (zi)", "[2]"], nout=2)
fails("frame_length > T", "dsp.frame", {"frame_length": 101, "hop_length": 1}, [x],
      ["dsp.frame", "'frame_length' = 101"])
fails("frame hop 0", "dsp.frame", {"frame_length": 10, "hop_length": 0}, [x],
      ["dsp.frame", "'hop_length'"])
fails("loudness mono 1-D", "dsp.loudness", {"sr": 48000}, [x], ["dsp.loudness", "[..., channels, T]"])
fails("loudness 7 channels", "dsp.loudness", {"sr": 48000}, [np.zeros((7, 100))],
      ["dsp.loudness", "7 channels"])
fails("loudness sr missing", "dsp.loudness", {}, [np.zeros((2, 100))], ["dsp.loudness", "'sr'"])
fails("normalize axes", "dsp.normalize", {"axes": 3}, [np.zeros((2, 100))],
      ["dsp.normalize", "'axes' = 3"])
fails("preemphasis coef nan", "dsp.preemphasis", {"coef": "nan"}, [x],
      ["dsp.preemphasis", "'coef'"])

print(f"{count} checks of dsp filter/level ops, {len(failures)} failed")
for f in failures[:30]:
    print("FAIL", f)
sys.exit(1 if failures else 0)
