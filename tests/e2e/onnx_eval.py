# SPDX-License-Identifier: BSD-3-Clause
"""A reference evaluator of the ONNX graphs tessera exports, written from
the ONNX operator specification (opset 13) with numpy in float64, since
Debian's python3-onnx 1.12 has no onnx.reference and onnxruntime is not
packaged.

    onnx_eval.py MODEL.onnx INPUTS.json OUTPUTS.json [TOL]

checks the model with onnx.checker (full_check: shapes inferred), runs it
on {"inputs": rows} and compares with {"outputs": rows} (what /predict
answered); prints the largest difference, exits 1 above TOL (1e-4)."""
import json
import math
import sys

import numpy as np
import onnx
from onnx import helper, numpy_helper

ERF = np.vectorize(math.erf)


def windows(x, kh, kw, strides, pads, dil=(1, 1), fill=0.0):
    """Each kernel offset's strided view of x [N, C, H, W], padded with fill."""
    x = np.pad(x, ((0, 0), (0, 0), (pads[0], pads[2]), (pads[1], pads[3])), constant_values=fill)
    H, W = x.shape[2], x.shape[3]
    oh = (H - (dil[0] * (kh - 1) + 1)) // strides[0] + 1
    ow = (W - (dil[1] * (kw - 1) + 1)) // strides[1] + 1
    for i in range(kh):
        for j in range(kw):
            r, c = i * dil[0], j * dil[1]
            yield i, j, x[:, :, r:r + strides[0] * (oh - 1) + 1:strides[0], c:c + strides[1] * (ow - 1) + 1:strides[1]]


def conv(x, w, b, a):
    g = a.get("group", 1)
    k = a.get("kernel_shape", list(w.shape[2:]))
    st, pads, dil = a.get("strides", [1, 1]), a.get("pads", [0, 0, 0, 0]), a.get("dilations", [1, 1])
    O, cg = w.shape[0], w.shape[1]
    og = O // g
    outs = []
    for gi in range(g):
        xg, wg = x[:, gi * cg:(gi + 1) * cg], w[gi * og:(gi + 1) * og]
        acc = 0
        for i, j, v in windows(xg, k[0], k[1], st, pads, dil):
            acc = acc + np.einsum("nchw,oc->nohw", v, wg[:, :, i, j])
        outs.append(acc)
    return np.concatenate(outs, axis=1) + b.reshape(1, -1, 1, 1)


def pool(x, a, op):
    k, st, pads = a["kernel_shape"], a.get("strides", [1, 1]), a.get("pads", [0, 0, 0, 0])
    assert a.get("ceil_mode", 0) == 0 and not any(pads), "the evaluator pools without padding only"
    views = [v for _, _, v in windows(x, k[0], k[1], st, pads)]
    return np.max(views, axis=0) if op == "MaxPool" else np.mean(views, axis=0)


def run(model, x):
    init = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    init = {n: (v.astype(np.float64) if v.dtype == np.float32 else v) for n, v in init.items()}
    env = {model.graph.input[0].name: x.astype(np.float64)}
    for n in model.graph.node:
        assert n.domain in ("", "ai.onnx"), n.domain
        a = {at.name: helper.get_attribute_value(at) for at in n.attribute}
        i = [env[k] if k in env else init[k] for k in n.input]
        op = n.op_type
        if op == "Gemm":
            A = i[0].T if a.get("transA", 0) else i[0]
            B = i[1].T if a.get("transB", 0) else i[1]
            y = a.get("alpha", 1.0) * (A @ B) + (a.get("beta", 1.0) * i[2] if len(i) > 2 else 0.0)
        elif op == "Conv":
            y = conv(i[0], i[1], i[2] if len(i) > 2 else np.zeros(i[1].shape[0]), a)
        elif op in ("MaxPool", "AveragePool"):
            y = pool(i[0], a, op)
        elif op == "GlobalAveragePool":
            y = i[0].mean(axis=(2, 3), keepdims=True)
        elif op == "BatchNormalization":
            assert a.get("training_mode", 0) == 0
            sh = (1, -1) + (1,) * (i[0].ndim - 2)
            y = (i[0] - i[3].reshape(sh)) / np.sqrt(i[4].reshape(sh) + a.get("epsilon", 1e-5)) \
                * i[1].reshape(sh) + i[2].reshape(sh)
        elif op == "Reshape":
            shape = [i[0].shape[d] if s == 0 else s for d, s in enumerate(i[1].tolist())]
            y = i[0].reshape(shape)
        elif op == "Transpose":
            y = np.transpose(i[0], a.get("perm"))
        elif op == "Flatten":
            ax = a.get("axis", 1)
            y = i[0].reshape(int(np.prod(i[0].shape[:ax])), -1)
        elif op == "ReduceMean":
            y = i[0].mean(axis=tuple(a["axes"]) if "axes" in a else None, keepdims=bool(a.get("keepdims", 1)))
        elif op in ("Add", "Sub", "Mul", "Div"):
            y = {"Add": np.add, "Sub": np.subtract, "Mul": np.multiply, "Div": np.divide}[op](i[0], i[1])
        elif op == "Sqrt":
            y = np.sqrt(i[0])
        elif op == "Erf":
            y = ERF(i[0])
        elif op == "Relu":
            y = np.maximum(i[0], 0)
        elif op == "Tanh":
            y = np.tanh(i[0])
        elif op == "Sigmoid":
            y = 1 / (1 + np.exp(-i[0]))
        elif op == "Softmax":
            z = i[0] - i[0].max(axis=a.get("axis", -1), keepdims=True)
            y = np.exp(z) / np.exp(z).sum(axis=a.get("axis", -1), keepdims=True)
        elif op == "Cast":
            assert a["to"] == onnx.TensorProto.INT64
            y = i[0].astype(np.int64)
        elif op == "Gather":
            y = np.take(i[0], i[1], axis=a.get("axis", 0))
        elif op == "Identity":
            y = i[0]
        else:
            raise SystemExit(f"{op}: not an operator tessera exports")
        env[n.output[0]] = y
    return env[model.graph.output[0].name]


def main():
    model = onnx.load(sys.argv[1])
    onnx.checker.check_model(model, full_check=True)
    assert [o.version for o in model.opset_import if o.domain in ("", "ai.onnx")] == [13]
    x = np.array(json.load(open(sys.argv[2]))["inputs"], dtype=np.float32).reshape(-1, model.graph.input[0]
                 .type.tensor_type.shape.dim[1].dim_value)
    want = np.array(json.load(open(sys.argv[3]))["outputs"])
    tol = float(sys.argv[4]) if len(sys.argv) > 4 else 1e-4
    got = run(model, x)
    assert got.shape == want.shape, (got.shape, want.shape)
    diff = float(np.abs(got - want).max())
    ops = sorted({n.op_type for n in model.graph.node})
    print(f"{sys.argv[1]}: max |onnx - /predict| = {diff:.2e} over {len(x)} rows; operators: {' '.join(ops)}")
    sys.exit(0 if diff <= tol else 1)


if __name__ == "__main__":
    main()
