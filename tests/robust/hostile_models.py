#!/usr/bin/python3
# SPDX-License-Identifier: BSD-3-Clause
"""Model files an attacker would upload or hand to `tessera serve`/`export`
(tests/robust/test_serve_*.sh). Each copies the root attributes of a real
model file, so only what it declares differs.

  hostile_models.py GOOD_MODEL OUTDIR

Writes into OUTDIR:
  declared.h5   layer_0 weight declared 64 x 2^20 (under the default budget), no data stored
  huge.h5       layer_0 weight declared 64 x 2^21 (over the default budget), no data stored
  bomb.h5       64 x 2^21 zeros, gzip: a small file that inflates past the budget
  external.h5   weights stored outside the file, in /etc/passwd
  elink.h5      weight an HDF5 external link to GOOD_MODEL
  softlink.h5   /model a soft link to a group elsewhere in the file
  deep.h5       33 layers (the limit is 32)
  oneout.h5     a cross-entropy model with one output
"""
import os
import sys

import h5py
import numpy as np

good, out = sys.argv[1], sys.argv[2]
src = h5py.File(good, "r")


def model(name, fill, version=1):
    """Version 1 (dense layers found by walking /model/layer_<i>) unless told:
    version 2 files declare their graph in the model attribute instead."""
    with h5py.File(os.path.join(out, name), "w") as f:
        for k, v in src.attrs.items():
            f.attrs[k] = v
        f.attrs["version"] = np.int64(version)
        fill(f)


def layer(f, i, weight=None, **kw):
    """Layer i with the given weight array, or one made by create_dataset(**kw)."""
    g = f.create_group(f"model/layer_{i}")
    g.attrs["type"] = "dense"
    g.attrs["activation"] = "none"
    w = g.create_dataset("weight", data=weight) if weight is not None else g.create_dataset("weight", dtype="f4", **kw)
    g.create_dataset("bias", data=np.zeros(w.shape[0], "f4"))


model("declared.h5", lambda f: layer(f, 0, shape=(64, 1 << 20)))
model("huge.h5", lambda f: layer(f, 0, shape=(64, 1 << 21)))
model("bomb.h5", lambda f: layer(f, 0, shape=(64, 1 << 21), data=np.zeros((64, 1 << 21), "f4"),
                                 compression="gzip", chunks=(64, 1 << 16)))
n = os.path.getsize("/etc/passwd") // 8
model("external.h5", lambda f: layer(f, 0, shape=(2, n), external=[("/etc/passwd", 0, 8 * n)]))


def elink(f):
    g = f.create_group("model/layer_0")
    g["weight"] = h5py.ExternalLink(os.path.abspath(good), "/model/layer_0/weight")
    g.create_dataset("bias", data=np.zeros(src["model/layer_0/bias"].shape, "f4"))


model("elink.h5", elink)


def softlink(f):
    g = f.create_group("elsewhere/layer_0")
    g.create_dataset("weight", data=np.zeros((2, 4), "f4"))
    g.create_dataset("bias", data=np.zeros(2, "f4"))
    f["model"] = h5py.SoftLink("/elsewhere")


model("softlink.h5", softlink)
model("deep.h5", lambda f: [layer(f, i, weight=np.zeros((4, 4), "f4")) for i in range(33)])
model("oneout.h5", lambda f: layer(f, 0, weight=np.zeros((1, 4), "f4")))
