"""The dsp.* spectral ops through the real CLI (`gpuq run`, embedded cluster) against NumPy,
SciPy and librosa 0.10 on random and edge inputs: length 1, shorter than n_fft, odd and
prime sizes, silence, full scale, batch dims, f64, NaN/Inf; and bad params refused at
admission with a message naming the op and the param.

Tolerances (max |got - want| over a case, relative to max |want| of the case unless said):
  fft/ifft/rfft/irfft   f32 2e-6 * sqrt(log2 n + 1)   f64 1e-12
                        (numpy computes in double; ours in the input's precision)
  window                f32 1 ulp (rtol 1.2e-7)       f64 1e-14
  stft, spectrogram     f32 2e-6                      f64 1e-12
                        (librosa runs the FFT in double even for f32 input)
  istft                 f32 1e-5 (abs, unit-scale signals) f64 1e-12, where the window
                        sum-square is >= 1e-3 of its peak (elsewhere both divide noise by ~0);
                        istft(stft(x)) == x within 1e-5 (f32) / 1e-12 (f64)
  mel                   f32 1e-5                      f64 1e-12
  logmel                f32 2e-3 dB, f64 1e-9 dB, plus the FFT's noise floor: a value v of
                        |X|^power gets 10 log10(1 + power eps (peak/v)^(1/power)) more,
                        eps = 1e-6 (f32) / 1e-14 (f64): float32 bins 100 dB under the peak
                        are FFT rounding noise (librosa runs its FFT in double)
  db                    f32 2e-3 dB absolute          f64 1e-9 dB absolute
  mfcc                  f32 2e-3 * max |want|         f64 1e-10
"""
import os
import subprocess
import sys
import tempfile
import warnings

import numpy as np

warnings.simplefilter("ignore")
np.seterr(all="ignore")
import librosa  # noqa: E402
import scipy.signal  # noqa: E402

BIN = os.path.join(os.environ.get("GQ_BIN_DIR", "build"), "gpuq")
ENV = dict(os.environ, GQ_FFTW_PLANNER="estimate", GQ_LOG="warn")
rng = np.random.default_rng(11)
tmp = tempfile.mkdtemp(prefix="gq-dsp-")
failures = []
count = 0


def run(op, params, x):
    """Runs one op on one input through the CLI; returns the output array."""
    args = [BIN, "run", op]
    for name, v in params.items():
        if isinstance(v, bool):
            v = "true" if v else "false"
        args += ["--param", f"{name}={v}"]
    p = os.path.join(tmp, "in0.npy")
    np.save(p, x)
    o = os.path.join(tmp, "out0.npy")
    args += ["--in", p, "--out", o, "--broker", "local"]
    r = subprocess.run(args, capture_output=True, text=True, timeout=60, env=ENV)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(args)}\nexit {r.returncode}: {r.stderr.strip()}")
    return np.load(o)


def run_fails(op, params, x, *fragments):
    """The op must be refused (non-zero exit) with every fragment in stderr."""
    global count
    count += 1
    args = [BIN, "run", op]
    for name, v in params.items():
        if isinstance(v, bool):
            v = "true" if v else "false"
        args += ["--param", f"{name}={v}"]
    p = os.path.join(tmp, "bad.npy")
    np.save(p, x)
    args += ["--in", p, "--out", os.path.join(tmp, "bad_out.npy"), "--broker", "local"]
    r = subprocess.run(args, capture_output=True, text=True, timeout=60, env=ENV)
    if r.returncode == 0:
        failures.append(f"{op} {params}: accepted, expected an error with {fragments}")
        return
    for f in fragments:
        if f not in r.stderr:
            failures.append(f"{op} {params}: message lacks '{f}': {r.stderr.strip()}")


def check(name, got, want, tol, absolute=False):
    """max |got - want| <= tol * (1 if absolute else max |want|); NaN must match NaN."""
    global count
    count += 1
    if got.dtype != want.dtype or got.shape != want.shape:
        failures.append(f"{name}: got {got.dtype}{got.shape}, want {want.dtype}{want.shape}")
        return
    gn, wn = ~np.isfinite(got), ~np.isfinite(want)
    if not np.array_equal(gn, wn) or not np.array_equal(got[gn], want[wn], equal_nan=True):
        failures.append(f"{name}: non-finite values differ: got {np.count_nonzero(gn)}, "
                        f"want {np.count_nonzero(wn)}")
        return
    if got.size == 0 or gn.all():
        return
    g = got[~gn].astype(np.complex128 if np.iscomplexobj(got) else np.float64)
    w = want[~wn].astype(g.dtype)
    scale = 1.0 if absolute else max(np.max(np.abs(w)), 1e-300)
    err = np.max(np.abs(g - w)) / scale
    if not err <= tol:
        i = int(np.argmax(np.abs(g - w)))
        failures.append(f"{name}: error {err:.3g} > {tol:.3g} (at {i}: got {g[i]}, want {w[i]})")


def check_where(name, got, want, mask, tol, absolute=False):
    """check() on the elements where mask holds (shapes and dtypes checked whole)."""
    global count
    if got.dtype != want.dtype or got.shape != want.shape:
        count += 1
        failures.append(f"{name}: got {got.dtype}{got.shape}, want {want.dtype}{want.shape}")
        return
    mask = np.broadcast_to(mask, want.shape)
    check(name, got[mask], want[mask], tol, absolute)


def check_db(name, got, want, ref, power, dt):
    """dB values against librosa, knowing the linear values ref they came from. The FFT's
    error is absolute, about eps of the peak amplitude (f32 1e-6, f64 1e-14), so a value v of
    |X|^power far below the peak carries power * eps * (peak / v)^(1/power) relative error:
    the tolerance is 2e-3 dB (f32) or 1e-9 dB (f64) plus that much in dB."""
    global count
    count += 1
    if got.dtype != want.dtype or got.shape != want.shape:
        failures.append(f"{name}: got {got.dtype}{got.shape}, want {want.dtype}{want.shape}")
        return
    f32 = dt == np.float32
    eps, base = (1e-6, 2e-3) if f32 else (1e-14, 1e-9)
    r = ref.astype(np.float64).reshape(ref.shape[0], -1)
    peak = r.max(axis=1, keepdims=True)
    with np.errstate(all="ignore"):
        ratio = np.where(r > 0, peak / r, np.where(peak > 0, np.inf, 0.0))
    tol = (base + 10 * np.log10(1 + power * eps * ratio ** (1.0 / power))).reshape(want.shape)
    err = np.abs(got.astype(np.float64) - want.astype(np.float64))
    bad = ~(err <= tol) & ~(np.isnan(got) & np.isnan(want))
    if bad.any():
        i = np.flatnonzero(bad)[0]
        failures.append(f"{name}: {np.count_nonzero(bad)} values off, first at {i}: got "
                        f"{got.flat[i]}, want {want.flat[i]} (tol {tol.flat[i]:.3g} dB)")


def tol_of(dt, t32, t64):
    return t64 if dt in (np.float64, np.complex128) else t32


CPLX = {np.float32: np.complex64, np.float64: np.complex128,
        np.complex64: np.complex64, np.complex128: np.complex128}
REAL = {np.complex64: np.float32, np.complex128: np.float64,
        np.float32: np.float32, np.float64: np.float64}


def noise(shape, dt):
    x = rng.standard_normal(shape)
    if dt in (np.complex64, np.complex128):
        x = x + 1j * rng.standard_normal(shape)
    return x.astype(dt)


# ---- fft, ifft, rfft, irfft ----

for dt in (np.float32, np.float64, np.complex64, np.complex128):
    for n_in in (1, 2, 7, 16, 100, 1009, 4096):
        x = noise((3, n_in), dt)
        for n, norm in ((0, "backward"), (n_in + 5, "ortho"), (max(1, n_in // 2), "forward")):
            nn = n or n_in
            tol = tol_of(dt, 2e-6 * np.sqrt(np.log2(nn) + 1), 1e-12)
            want = np.fft.fft(x, n=nn, norm=norm).astype(CPLX[dt])
            check(f"fft {dt.__name__} {n_in} n={n} {norm}",
                  run("dsp.fft", {"n": n, "norm": norm}, x), want, tol)
            want = np.fft.ifft(x, n=nn, norm=norm).astype(CPLX[dt])
            check(f"ifft {dt.__name__} {n_in} n={n} {norm}",
                  run("dsp.ifft", {"n": n, "norm": norm}, x), want, tol)
            if dt in (np.float32, np.float64):
                want = np.fft.rfft(x, n=nn, norm=norm).astype(CPLX[dt])
                check(f"rfft {dt.__name__} {n_in} n={n} {norm}",
                      run("dsp.rfft", {"n": n, "norm": norm}, x), want, tol)
            else:
                nout = n or 2 * (n_in - 1)
                if nout >= 1:
                    want = np.fft.irfft(x, n=nout, norm=norm).astype(REAL[dt])
                    check(f"irfft {dt.__name__} {n_in} n={n} {norm}",
                          run("dsp.irfft", {"n": n, "norm": norm}, x), want,
                          tol_of(dt, 2e-6 * np.sqrt(np.log2(nout) + 1), 1e-12))

# batch dims and the odd irfft length
x = noise((2, 3, 4, 33), np.complex64)
check("fft batch [2,3,4,33]", run("dsp.fft", {}, x), np.fft.fft(x).astype(np.complex64), 1e-5)
check("irfft n=63", run("dsp.irfft", {"n": 63}, x),
      np.fft.irfft(x, n=63).astype(np.float32), 1e-5)
check("irfft of real input", run("dsp.irfft", {}, x.real.copy()),
      np.fft.irfft(x.real).astype(np.float32), 1e-5)

# a round trip is the identity
x = noise((4, 1009), np.float64)
y = run("dsp.rfft", {}, x)
check("irfft(rfft(x)) f64 prime", run("dsp.irfft", {"n": 1009}, y), x, 1e-12)

# NaN/Inf: every output of the transform they are in is non-finite; other rows untouched
for dt in (np.float32, np.complex128):
    x = noise((3, 64), dt)
    x[1, 5] = np.nan
    x[2, 9] = np.inf
    got = run("dsp.fft", {}, x)
    count += 1
    if np.isfinite(got[1:]).any():
        failures.append(f"fft {dt.__name__} NaN/Inf: finite outputs in rows with NaN/Inf")
    check(f"fft {dt.__name__} clean row beside NaN", got[:1],
          np.fft.fft(x[:1]).astype(CPLX[dt]), tol_of(dt, 1e-5, 1e-12))

# ---- window ----

WINDOWS = ["hann", "hamming", "blackman", ("kaiser", 8.6), "boxcar"]
for dt in (np.float32, np.float64):
    for n in (1, 2, 5, 64, 511):
        x = rng.uniform(0.5, 2.0, size=(2, n)).astype(dt)
        for w in WINDOWS:
            name, beta = (w, 12.0) if isinstance(w, str) else w
            for periodic in (True, False):
                win = scipy.signal.get_window(w, n, fftbins=periodic)
                want = (x * win.astype(dt)).astype(dt)
                got = run("dsp.window", {"window": name, "beta": beta, "periodic": periodic}, x)
                check(f"window {name} {dt.__name__} n={n} periodic={periodic}", got, want,
                      tol_of(dt, 1.2e-7, 1e-14))

# ---- stft, spectrogram, istft ----


def lwin(name, beta):
    return ("kaiser", beta) if name == "kaiser" else name


STFT_CASES = [
    # n_fft, hop, win_length, window, center, pad_mode, T
    (512, 128, 0, "hann", True, "constant", 4000),
    (512, 160, 400, "hamming", True, "reflect", 3001),
    (256, 64, 0, "blackman", False, "constant", 1000),
    (257, 100, 0, "kaiser", True, "reflect", 1500),    # odd n_fft
    (2048, 0, 0, "hann", True, "constant", 1),        # one sample, default hop
    (512, 128, 0, "hann", True, "reflect", 100),      # shorter than n_fft, reflect repeats
    (400, 400, 0, "boxcar", True, "constant", 7919),  # prime length, hop = n_fft
    (8, 1, 5, "hann", True, "reflect", 3),
    (1009, 333, 0, "hann", False, "constant", 1009),  # prime n_fft, exactly one frame
]
for dt in (np.float32, np.float64):
    for (n_fft, hop, win, wname, center, pad, T) in STFT_CASES:
        x = noise((2, 1, T), dt)
        p = {"n_fft": n_fft, "hop_length": hop, "win_length": win, "window": wname,
             "beta": 8.0, "center": center, "pad_mode": pad}
        want = librosa.stft(x, n_fft=n_fft, hop_length=hop or None, win_length=win or None,
                            window=lwin(wname, 8.0), center=center, pad_mode=pad)
        tag = f"{dt.__name__} n_fft={n_fft} hop={hop} win={win} {wname} center={center} " \
              f"{pad} T={T}"
        check(f"stft {tag}", run("dsp.stft", p, x), want, tol_of(dt, 2e-6, 1e-12))
        for power in (1.0, 2.0):
            check(f"spectrogram power={power} {tag}",
                  run("dsp.spectrogram", dict(p, power=power), x),
                  (np.abs(want.astype(np.complex128)) ** power).astype(dt),
                  tol_of(dt, 2e-6 * power, 1e-12))
        if n_fft % 2 == 0 and T > 1:
            full = np.concatenate([want, np.conj(want[..., -2:0:-1, :])], axis=-2)
            check(f"stft onesided=false {tag}", run("dsp.stft", dict(p, onesided=False), x),
                  full, tol_of(dt, 2e-6, 1e-12))

for dt in (np.complex64, np.complex128):
    rdt = REAL[dt]
    for (n_fft, hop, win, wname, center, length, T) in [
            (512, 128, 0, "hann", True, 0, 4000),
            (400, 160, 400, "hamming", True, 3000, 3000),
            (256, 64, 200, "hann", False, 0, 1000),
            (512, 128, 0, "hann", True, 5000, 4000),   # longer than the frames: zeros
            (512, 128, 0, "hann", True, 100, 4000),    # shorter
            (257, 64, 0, "blackman", True, 0, 999)]:
        x = noise((3, T), rdt)
        lp = dict(n_fft=n_fft, hop_length=hop, win_length=win or None, window=wname,
                  center=center)
        S = librosa.stft(x, **lp)
        p = {"n_fft": n_fft, "hop_length": hop, "win_length": win, "window": wname,
             "center": center, "length": length}
        tag = f"{dt.__name__} n_fft={n_fft} hop={hop} {wname} center={center} length={length}"
        got = run("dsp.istft", p, S)
        want = librosa.istft(S, length=length or None, **lp)
        # Where the window sum-square is near 0 (center=false edges, past the frames) both
        # divide rounding noise by ~0: compare where it is at least 1e-3 of its peak.
        wss = librosa.filters.window_sumsquare(window=wname, n_frames=S.shape[-1],
                                               hop_length=hop, win_length=win or n_fft,
                                               n_fft=n_fft, dtype=np.float64)
        wss = librosa.util.fix_length(wss[n_fft // 2 if center else 0:], size=want.shape[-1])
        check_where(f"istft {tag}", got, want, wss >= 1e-3 * wss.max(),
                    tol_of(dt, 1e-5, 1e-12), absolute=True)
        if length == 0 and center and wname != "blackman" or length == T:
            check(f"istft(stft(x)) {tag}", got, x[..., :got.shape[-1]],
                  tol_of(dt, 1e-5, 1e-12), absolute=True)
    # default n_fft from the bins, and two-sided input
    x = noise((2, 2000), rdt)
    S = librosa.stft(x, n_fft=512, hop_length=128)
    check(f"istft default n_fft {dt.__name__}", run("dsp.istft", {"hop_length": 128}, S),
          librosa.istft(S, hop_length=128), tol_of(dt, 1e-5, 1e-12), absolute=True)
    full = np.concatenate([S, np.conj(S[..., -2:0:-1, :])], axis=-2)
    check(f"istft onesided=false {dt.__name__}",
          run("dsp.istft", {"hop_length": 128, "onesided": False, "length": 2000}, full),
          x, tol_of(dt, 1e-5, 1e-12), absolute=True)

# NaN in a signal: the frames whose window covers it are non-finite, the others exact
x = noise((1, 3000), np.float32)
x[0, 1500] = np.nan
got = run("dsp.stft", {"n_fft": 512, "hop_length": 128}, x)
clean = x.copy()
clean[0, 1500] = 0
want = librosa.stft(clean, n_fft=512, hop_length=128)
hit = [t for t in range(want.shape[-1]) if abs(t * 128 - 1500) < 256]
want[..., hit] = np.nan
got[..., hit] = np.where(np.isfinite(got[..., hit]), 0, np.nan)
check("stft NaN sample: only its frames", got, want, 2e-6)

# ---- mel, logmel, mfcc ----

MEL_CASES = [
    dict(sr=16000, n_fft=512, hop_length=160, n_mels=80),
    dict(sr=22050, n_fft=2048, hop_length=512, n_mels=128),
    dict(sr=16000, n_fft=400, hop_length=160, n_mels=40, htk=True, fmin=20.0, fmax=7600.0),
    dict(sr=8000, n_fft=256, hop_length=80, n_mels=64, norm="none", power=1.0),
    dict(sr=44100, n_fft=1024, hop_length=256, n_mels=96, window="hamming", center=False),
    dict(sr=16000, n_fft=512, hop_length=128, n_mels=40, pad_mode="reflect", win_length=400),
]


def librosa_mel_kwargs(p):
    k = dict(p)
    if "norm" in k and k["norm"] == "none":
        k["norm"] = None
    return k


T = 16000
t = np.arange(T) / 16000.0
signals = np.stack([rng.standard_normal(T) * 0.1,
                    np.sin(2 * np.pi * 440 * t),                 # full scale tone
                    np.sign(np.sin(2 * np.pi * 97 * t)),         # full scale square
                    np.zeros(T)])                                 # silence
for dt in (np.float32, np.float64):
    x = signals.astype(dt)
    for p in MEL_CASES:
        kw = librosa_mel_kwargs(p)
        tag = f"{dt.__name__} {p}"
        mel_want = librosa.feature.melspectrogram(y=x, **kw)
        check(f"mel {tag}", run("dsp.mel", p, x), mel_want, tol_of(dt, 1e-5, 1e-12))
        want = np.stack([librosa.power_to_db(m) for m in mel_want])
        check_db(f"logmel {tag}", run("dsp.logmel", p, x), want, mel_want,
                 p.get("power", 2.0), dt)
    p = MEL_CASES[0]
    mel_want = librosa.feature.melspectrogram(y=x, **p)
    want = np.stack([librosa.power_to_db(m, ref=np.max, top_db=None) for m in mel_want])
    check_db(f"logmel ref=max top_db=none {dt.__name__}",
             run("dsp.logmel", dict(p, ref_max=True, top_db="inf"), x), want, mel_want, 2.0, dt)
    want = np.stack([librosa.power_to_db(m, ref=3.5, amin=1e-6, top_db=40.0) for m in mel_want])
    check_db(f"logmel ref=3.5 amin=1e-6 top_db=40 {dt.__name__}",
             run("dsp.logmel", dict(p, ref=3.5, amin=1e-6, top_db=40.0), x), want, mel_want,
             2.0, dt)
    for n_mfcc, lifter in ((20, 0.0), (13, 22.0), (40, 0.0)):
        want = np.stack([librosa.feature.mfcc(y=x[i], n_mfcc=n_mfcc, lifter=lifter, **p)
                         for i in range(3)])
        check(f"mfcc n_mfcc={n_mfcc} lifter={lifter} {dt.__name__}",
              run("dsp.mfcc", dict(p, n_mfcc=n_mfcc, lifter=lifter), x[:3]), want,
              tol_of(dt, 2e-3, 1e-10))

# short inputs, batch dims
x = noise((2, 3, 1), np.float32)
want = librosa.feature.melspectrogram(y=x, sr=16000, n_fft=512, hop_length=160, n_mels=80)
check("mel one sample [2,3,1]",
      run("dsp.mel", dict(sr=16000, n_fft=512, hop_length=160, n_mels=80), x), want, 1e-5)
x = noise((2, 300), np.float32)
want = librosa.feature.melspectrogram(y=x, sr=16000, n_fft=512, hop_length=160, n_mels=80,
                                      pad_mode="reflect")
check("mel shorter than n_fft, reflect",
      run("dsp.mel", dict(sr=16000, n_fft=512, hop_length=160, n_mels=80, pad_mode="reflect"),
          x), want, 1e-5)

# NaN: logmel's top_db floor is NaN, so the whole spectrogram is NaN (numpy.maximum)
x = signals[:2].astype(np.float32).copy()
x[1, 777] = np.nan
got = run("dsp.logmel", dict(MEL_CASES[0]), x)
count += 1
if not (np.isnan(got[1]).all() and np.isfinite(got[0]).all()):
    failures.append("logmel NaN: expected all NaN in the NaN signal, all finite in the other")

# ---- db ----

for dt in (np.float32, np.float64):
    for shape in ((7,), (5, 6), (2, 3, 4)):
        S = (rng.uniform(0, 1, size=shape) ** 8).astype(dt)
        S.flat[0] = 0
        groups = S.reshape(-1, *shape[-2:]) if len(shape) > 2 else S[None]
        tol = tol_of(dt, 2e-3, 1e-9)
        for p, fn in (
                ({"mode": "power_to_db"}, lambda g: librosa.power_to_db(g)),
                ({"mode": "power_to_db", "ref_max": True, "top_db": 30.0},
                 lambda g: librosa.power_to_db(g, ref=np.max, top_db=30.0)),
                ({"mode": "amplitude_to_db"}, lambda g: librosa.amplitude_to_db(g)),
                ({"mode": "amplitude_to_db", "ref": 0.5, "amin": 1e-3, "top_db": "inf"},
                 lambda g: librosa.amplitude_to_db(g, ref=0.5, amin=1e-3, top_db=None))):
            want = np.stack([fn(g) for g in groups]).reshape(shape).astype(dt)
            check(f"db {p} {dt.__name__} {shape}", run("dsp.db", p, S), want, tol,
                  absolute=True)
        D = (rng.uniform(-80, 10, size=shape)).astype(dt)
        check(f"db db_to_power {dt.__name__} {shape}",
              run("dsp.db", {"mode": "db_to_power", "ref": 2.0}, D),
              librosa.db_to_power(D, ref=2.0).astype(dt), tol_of(dt, 1e-6, 1e-13))
        check(f"db db_to_amplitude {dt.__name__} {shape}",
              run("dsp.db", {"mode": "db_to_amplitude"}, D),
              librosa.db_to_amplitude(D).astype(dt), tol_of(dt, 1e-6, 1e-13))

# ---- bad params: refused at admission, message names op, param and value ----

a = np.zeros((2, 1000), np.float32)
c = np.zeros((2, 257, 10), np.complex64)
run_fails("dsp.stft", {"n_fft": 0}, a, "dsp.stft", "'n_fft' = 0")
run_fails("dsp.stft", {"n_fft": 512, "hop_length": 600}, a,
          "dsp.stft: param 'hop_length' = 600 must be <= n_fft (512)")
run_fails("dsp.stft", {"n_fft": 512, "win_length": 513}, a, "'win_length' = 513", "n_fft (512)")
run_fails("dsp.stft", {"n_fft": 2, "win_length": 2}, a, "'hop_length' = 0", "win_length")
run_fails("dsp.stft", {"n_fft": 2048, "center": False}, a, "dsp.stft", "fewer than n_fft (2048)",
          "center=false")
run_fails("dsp.stft", {"pad_mode": "wrap"}, a, "'pad_mode' = 'wrap'", "constant, reflect")
run_fails("dsp.stft", {"window": "triangle"}, a, "'window' = 'triangle'")
run_fails("dsp.stft", {}, np.zeros((2, 0), np.float32), "dsp.stft", "no samples")
run_fails("dsp.stft", {}, np.zeros((), np.float32), "dsp.stft", "at least 1 dim")
run_fails("dsp.stft", {}, c, "dsp.stft", "dtype c64 not supported")
run_fails("dsp.mel", {"sr": 16000, "fmax": 9000}, a, "dsp.mel: param 'fmax' = 9000",
          "sr/2 (8000)")
run_fails("dsp.mel", {"n_mels": 0}, a, "dsp.mel: param 'n_mels' = 0")
run_fails("dsp.mel", {"fmin": 12000}, a, "'fmin' = 12000", "fmax (11025)")
run_fails("dsp.logmel", {"amin": 0}, a, "dsp.logmel: param 'amin' = 0")
run_fails("dsp.logmel", {"top_db": -1}, a, "dsp.logmel: param 'top_db' = -1")
run_fails("dsp.mfcc", {"n_mfcc": 200, "n_mels": 128}, a, "'n_mfcc' = 200", "n_mels (128)")
run_fails("dsp.mfcc", {"lifter": -2}, a, "dsp.mfcc: param 'lifter' = -2")
run_fails("dsp.spectrogram", {"power": 0}, a, "dsp.spectrogram: param 'power' = 0")
run_fails("dsp.istft", {}, np.zeros((2, 1, 10), np.complex64), "dsp.istft", "'n_fft' = 0")
run_fails("dsp.istft", {"n_fft": 512, "hop_length": 1000}, c, "'hop_length' = 1000")
run_fails("dsp.istft", {}, a, "dsp.istft", "dtype f32 not supported")
run_fails("dsp.fft", {"norm": "none"}, a, "dsp.fft: param 'norm' = 'none'")
run_fails("dsp.fft", {}, np.zeros((3, 0), np.float32), "dsp.fft", "'n' = 0")
run_fails("dsp.fft", {"n": -4}, a, "dsp.fft: param 'n' = -4")
run_fails("dsp.irfft", {}, np.zeros((3, 1), np.complex64), "dsp.irfft", "'n' = 0")
run_fails("dsp.rfft", {}, c, "dsp.rfft", "dtype c64 not supported")
run_fails("dsp.window", {"beta": 500}, a, "dsp.window: param 'beta'", "must be in 0..")
run_fails("dsp.db", {"mode": "to_db"}, a, "dsp.db: param 'mode' = 'to_db'")

print(f"{count} checks against NumPy/SciPy/librosa, {len(failures)} failed")
for f in failures[:40]:
    print("FAIL", f)
sys.exit(1 if failures else 0)
