#!/usr/bin/env python3
"""Writes the sample recordings of examples/audio/ (the README's main job resamples them to
16 kHz and turns them into log-mel features). Standard library only, deterministic: the same
bytes on every run. Six 16-bit PCM WAV files at different rates and channel counts, chosen
to exercise the pipeline: tones, a chirp across the band, noise, a speech-like buzz, DTMF
at telephone rate, and a file that is mostly silence."""
import math
import os
import random
import struct
import sys
import wave

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "audio")
SECONDS = 1.5


def write(name, rate, channels):
    """channels: list of per-channel sample lists in [-1, 1]."""
    n = len(channels[0])
    frames = bytearray()
    for i in range(n):
        for ch in channels:
            v = max(-1.0, min(1.0, ch[i]))
            frames += struct.pack("<h", int(round(v * 32767)))
    with wave.open(os.path.join(OUT, name), "wb") as w:
        w.setnchannels(len(channels))
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(bytes(frames))


def tone(rate, freqs, amp, n):
    return [amp * sum(math.sin(2 * math.pi * f * i / rate) / (k + 1) for k, f in enumerate(freqs))
            for i in range(n)]


def main():
    os.makedirs(OUT, exist_ok=True)
    rnd = random.Random(20261123)

    r = 44100
    n = int(SECONDS * r)
    left = tone(r, [440, 880, 1320], 0.3, n)
    right = tone(r, [554.37, 1108.73], 0.3, n)
    write("chord_44k1_stereo.wav", r, [left, right])

    r = 48000
    n = int(SECONDS * r)
    f0, f1 = 100.0, 12000.0
    k = math.log(f1 / f0) / SECONDS
    write("chirp_48k.wav", r, [[0.5 * math.sin(2 * math.pi * f0 * (math.exp(k * i / r) - 1) / k)
                                for i in range(n)]])

    r = 22050
    n = int(SECONDS * r)
    b = [0.0] * 3
    pink = []
    for _ in range(n):  # Paul Kellet's economy pink filter over white noise
        w = rnd.uniform(-1, 1)
        b[0] = 0.99765 * b[0] + w * 0.0990460
        b[1] = 0.96300 * b[1] + w * 0.2965164
        b[2] = 0.57000 * b[2] + w * 1.0526913
        pink.append(0.15 * (b[0] + b[1] + b[2] + w * 0.1848))
    write("pink_noise_22k05.wav", r, [pink])

    r = 16000
    n = int(SECONDS * r)
    buzz = []
    for i in range(n):  # 120 Hz glottal-ish pulse train through two formant resonances
        t = i / r
        env = 0.5 * (1 - math.cos(2 * math.pi * 3 * t))
        buzz.append(env * 0.25 * sum(math.sin(2 * math.pi * 120 * h * t) *
                                     (1.0 if abs(120 * h - 700) < 200 or abs(120 * h - 1200) < 250
                                      else 0.15) / h for h in range(1, 30)))
    write("voice_like_16k.wav", r, [buzz])

    r = 8000
    n = int(SECONDS * r)
    keys = [(697, 1209), (770, 1336), (852, 1477), (941, 1633)]
    dtmf = []
    for i in range(n):
        slot = i // (n // 4)
        lo, hi = keys[min(slot, 3)]
        on = (i % (n // 4)) < (n // 4) * 0.7
        dtmf.append(0.35 * (math.sin(2 * math.pi * lo * i / r) + math.sin(2 * math.pi * hi * i / r))
                    if on else 0.0)
    write("dtmf_8k.wav", r, [dtmf])

    r = 44100
    n = int(SECONDS * r)
    quiet = [0.0] * n
    for c in range(3):
        at = int((0.3 + 0.4 * c) * r)
        for j in range(200):
            quiet[at + j] = 0.9 * math.exp(-j / 30) * (1 if j % 2 else -1)
    write("clicks_44k1.wav", r, [quiet])
    return 0


if __name__ == "__main__":
    sys.exit(main())
