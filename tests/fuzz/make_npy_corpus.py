#!/usr/bin/env python3
"""Writes the seed corpus of fuzz_npy into corpus/npy/: small valid .npy files laid out
byte for byte as numpy writes them (checked against numpy.load when it was made), covering
every header version, byte order, Fortran order, 0-d, 0-size and 8-d shapes. No numpy
needed: the seeds are reproducible from this script alone.

    python3 tests/fuzz/make_npy_corpus.py [OUT_DIR]
"""
import os
import struct
import sys

MAGIC = b"\x93NUMPY"
ALIGN = 64


def npy(descr, shape, data, fortran=False, version=1, header=None):
    if header is None:
        if len(shape) == 1:
            shape_txt = "(%d,)" % shape[0]
        else:
            shape_txt = "(" + ", ".join(str(d) for d in shape) + ")"
        header = "{'descr': '%s', 'fortran_order': %s, 'shape': %s, }" % (
            descr, "True" if fortran else "False", shape_txt)
    lenfmt = "<H" if version == 1 else "<I"
    pre = len(MAGIC) + 2 + struct.calcsize(lenfmt)
    hlen = len(header) + 1
    pad = ALIGN - (pre + hlen) % ALIGN
    text = (header + " " * pad + "\n").encode("latin1")
    return MAGIC + bytes([version, 0]) + struct.pack(lenfmt, len(text)) + text + data


def seeds():
    f32 = struct.pack("<6f", 0, 1, 2, 3, 4, 5)
    yield "f4_2x3", npy("<f4", (2, 3), f32)
    yield "f8_scalar", npy("<f8", (), struct.pack("<d", 1.5))
    yield "i4_be", npy(">i4", (5,), struct.pack(">5i", 1, -2, 3, -4, 5))
    yield "f8_fortran", npy("<f8", (2, 3), struct.pack("<6d", 0, 3, 1, 4, 2, 5), fortran=True)
    yield "i2_v2", npy("<i2", (2,), struct.pack("<2h", 7, -7), version=2)
    yield "i2_v3", npy("<i2", (2,), struct.pack("<2h", 7, -7), version=3)
    yield "b1", npy("|b1", (4,), bytes([0, 1, 1, 0]))
    yield "c16", npy("<c16", (1,), struct.pack("<2d", 1.0, -1.0))
    yield "u1_empty", npy("|u1", (0,), b"")
    yield "f2_8d", npy("<f2", (1, 1, 1, 1, 1, 1, 1, 2), struct.pack("<2H", 0x3C00, 0xC000))
    yield "u4_3d", npy("<u4", (1, 2, 1), struct.pack("<2I", 1, 2**32 - 1))
    yield "c8_be_fortran", npy(">c8", (1, 2), struct.pack(">4f", 1, 2, 3, 4), fortran=True)
    # Spellings numpy reads though it never writes them: other quotes, key order, spacing.
    yield "variant", npy(None, None, struct.pack("<3q", 1, 2, 3),
                         header='{"shape":(3,),"fortran_order":False,"descr":"=i8"}')


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "corpus", "npy")
    os.makedirs(out, exist_ok=True)
    for name, blob in seeds():
        with open(os.path.join(out, name + ".npy"), "wb") as f:
            f.write(blob)


if __name__ == "__main__":
    main()
