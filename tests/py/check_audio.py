"""Audio files through the real CLI: every format gpuq reads (WAV PCM16/24/32, float, FLAC,
Ogg, AIFF; mono and multichannel) against soundfile's decoding of the same file; .wav/.flac
outputs read back; --mono; --param NAME=@sr; batch over a folder of mixed rates; broken files
give an error naming the file."""
import os
import subprocess
import sys
import tempfile

import numpy as np
import soundfile as sf

BIN_DIR = os.environ.get("GQ_BIN_DIR", "build")
BIN = os.path.join(BIN_DIR, "gpuq")
tmp = tempfile.mkdtemp(prefix="gq-audio-")
rng = np.random.default_rng(11)
failures = []
count = 0


def gpuq(*args, ok=True):
    r = subprocess.run([BIN, *args, "--broker", "local"] if args[0] == "run" else [BIN, *args],
                       capture_output=True, text=True, timeout=60)
    if ok and r.returncode != 0:
        raise RuntimeError(f"gpuq {' '.join(args)}: exit {r.returncode}: {r.stderr.strip()}")
    return r


def check(name, cond, detail=""):
    global count
    count += 1
    if not cond:
        failures.append(f"{name}: {detail}")


def signal(frames, channels):
    t = np.arange(frames) / 1000.0
    x = np.stack([0.5 * np.sin(2 * np.pi * (3 + c) * t) + 0.05 * rng.standard_normal(frames)
                  for c in range(channels)])
    return np.clip(x, -1, 1).astype(np.float32)


FORMATS = [("wav", "PCM_16", 2.0 ** -15), ("wav", "PCM_24", 2.0 ** -23),
           ("wav", "PCM_32", 2.0 ** -31), ("wav", "FLOAT", 0.0), ("flac", "PCM_16", 2.0 ** -15),
           ("flac", "PCM_24", 2.0 ** -23), ("ogg", "VORBIS", None), ("aiff", "PCM_16", 2.0 ** -15)]

for ext, subtype, _ in FORMATS:
    for rate, channels, frames in [(16000, 1, 1601), (44100, 2, 4410), (48000, 6, 480), (8000, 1, 1)]:
        if ext == "ogg" and frames < 2:
            continue
        x = signal(frames, channels)
        path = os.path.join(tmp, f"in_{subtype}_{rate}_{channels}.{ext}")
        sf.write(path, x.T, rate, subtype=subtype)
        want, wsr = sf.read(path, dtype="float32", always_2d=True)
        want = want.T
        out = os.path.join(tmp, "out.npy")
        # factor=@sr / sr: multiplies by 1 exactly while checking @sr reached the op.
        gpuq("run", "tensor.scale", "--param", "factor=@sr", "--in", path, "--out", out)
        got = np.load(out) / np.float32(rate)
        name = f"read {ext}/{subtype} {rate} Hz x{channels} ({frames} frames)"
        check(name, got.shape == want.shape and got.dtype == np.float32,
              f"shape {got.shape} {got.dtype}, want {want.shape}")
        if got.shape == want.shape:
            check(name, np.allclose(got, want, rtol=1e-6, atol=1e-7),
                  f"max diff {np.max(np.abs(got - want))}")
        gpuq("run", "tensor.scale", "--mono", "--in", path, "--out", out)
        got = np.load(out)
        check(name + " --mono", got.shape == (frames,) and
              np.allclose(got, want.mean(axis=0), rtol=1e-5, atol=1e-6),
              f"shape {got.shape}")

# Outputs as audio: .wav is 32-bit float (exact), .flac 24-bit.
x = signal(3000, 2)
src = os.path.join(tmp, "src.npy")
np.save(src, x)
for ext, tol in [("wav", 0.0), ("flac", 2.0 ** -22)]:
    out = os.path.join(tmp, f"o.{ext}")
    # npy input: no rate, so an audio output needs target_sr from a stage, or fails clearly.
    r = gpuq("run", "tensor.scale", "--in", src, "--out", out, ok=False)
    check(f"write {ext} without a rate", r.returncode == 1 and "sample rate 0" in r.stderr,
          r.stderr.strip())
    wav = os.path.join(tmp, "src.wav")
    sf.write(wav, x.T, 22050, subtype="FLOAT")
    gpuq("run", "tensor.scale", "--in", wav, "--out", out)
    y, sr = sf.read(out, dtype="float32", always_2d=True)
    check(f"write {ext}", sr == 22050 and y.T.shape == x.shape and
          np.allclose(y.T, x, atol=tol, rtol=0), f"sr {sr} shape {y.T.shape}")

# Broken input files: an error that names the file, exit 1, no crash.
bad = os.path.join(tmp, "bad.wav")
with open(bad, "wb") as f:
    f.write(b"RIFF\x10\x00\x00\x00WAVEfmt garbage")
r = gpuq("run", "tensor.scale", "--in", bad, "--out", os.path.join(tmp, "b.npy"), ok=False)
check("corrupt wav", r.returncode == 1 and "bad.wav" in r.stderr, r.stderr.strip())
trunc = os.path.join(tmp, "trunc.wav")
sf.write(trunc, signal(4000, 1).T, 16000, subtype="PCM_16")
with open(trunc, "r+b") as f:
    f.truncate(2000)
r = gpuq("run", "tensor.scale", "--in", trunc, "--out", os.path.join(tmp, "t.npy"), ok=False)
check("truncated wav", r.returncode in (0, 1), r.stderr.strip())  # libsndfile may read the rest
r = gpuq("run", "tensor.scale", "--param", "factor=@sr", "--in", src, "--out",
         os.path.join(tmp, "t.npy"), ok=False)
check("@sr with an npy input", r.returncode == 1 and "needs an audio input" in r.stderr,
      r.stderr.strip())
r = gpuq("run", "tensor.cast", "--param", "to=@sr", "--in", bad, ok=False)
check("@sr on a string param", r.returncode == 2 and "not a rate" in r.stderr, r.stderr.strip())

# Batch over a folder of mixed rates and formats, with one broken file: every good file done,
# the broken one reported by name, exit 1.
indir = os.path.join(tmp, "batch_in")
os.makedirs(indir)
rates = [8000, 16000, 22050, 44100, 48000]
for i, rate in enumerate(rates):
    sf.write(os.path.join(indir, f"f{i}.{'flac' if i % 2 else 'wav'}"),
             signal(rate // 10, 1 + i % 2).T, rate, subtype="PCM_16")
np.save(os.path.join(indir, "g.npy"), x)
with open(os.path.join(indir, "zz_broken.wav"), "wb") as f:
    f.write(b"not audio at all")
outdir = os.path.join(tmp, "batch_out")
r = gpuq("batch", "tensor.scale", "--param", "factor=2", "--in-dir", indir, "--out-dir", outdir,
         "--broker", "local", ok=False)
check("batch exit", r.returncode == 1, f"exit {r.returncode}: {r.stderr}")
check("batch broken named", "zz_broken.wav" in r.stdout and "FAILED" in r.stdout, r.stdout)
for i, rate in enumerate(rates):
    line = [ln for ln in r.stdout.splitlines() if ln.startswith(f"f{i}.")]
    check(f"batch line f{i}", len(line) == 1 and f"@{rate} Hz" in line[0], str(line))
    p = os.path.join(outdir, f"f{i}.npy")
    check(f"batch output f{i}", os.path.exists(p) and np.load(p).shape == (1 + i % 2, rate // 10))
check("batch npy", os.path.exists(os.path.join(outdir, "g.npy")))
r = gpuq("batch", "tensor.scale", "--in-dir", indir, "--out-dir", outdir + "_wav", "--out-ext",
         "wav", "--broker", "local", ok=False)
y, sr = sf.read(os.path.join(outdir + "_wav", "f3.wav"), always_2d=True)
check("batch --out-ext wav keeps the rate", sr == 44100 and y.shape == (4410, 2), f"{sr} {y.shape}")

print(f"{count} audio checks, {len(failures)} failed")
for f in failures:
    print("FAIL", f)
sys.exit(1 if failures else 0)
