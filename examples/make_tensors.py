"""Writes the demo's input tensors: examples/tensors/*.npy, small synthetic sensor
recordings (4 channels x 2000 samples of drifting sines, noise and spikes), deterministic.
Run with the tests' venv: build/venv/bin/python examples/make_tensors.py"""
import os

import numpy as np

out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "tensors")
os.makedirs(out, exist_ok=True)
rng = np.random.default_rng(20261123)
t = np.arange(2000, dtype=np.float64) / 1000.0
for k in range(6):
    ch = []
    for c in range(4):
        f = 3.0 + 2.0 * k + c
        x = (0.4 + 0.1 * c) * np.sin(2 * np.pi * f * t + k) + 0.05 * rng.standard_normal(t.size)
        spikes = rng.choice(t.size, size=5, replace=False)
        x[spikes] += rng.choice([-3.0, 3.0], size=5)
        ch.append(x + 0.02 * k)
    np.save(os.path.join(out, f"recording_{k:02d}.npy"), np.asarray(ch, dtype=np.float32))
