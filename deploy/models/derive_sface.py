#!/usr/bin/env python3
"""Derives the SFace graph Clearway runs from the pinned OpenCV Zoo file: the same network, the same
weights, computed faster by ONNX Runtime's CPU kernels (`just setup` runs it; the output is pinned
by SHA-256 in deploy/assets.lock like any artefact).

usage: derive_sface.py <face_recognition_sface_2021dec.onnx> <output.onnx>

Two rewrites, both measured in BENCHMARKS.md ("The face pipeline"):

1. The file lists every weight as a graph input as well as an initializer (an old exporter's
   habit). ONNX Runtime must then treat each weight as a value a caller could override: no constant
   folding, no BatchNormalization folded into its Conv, no pre-packed weights. The weights are
   removed from the inputs; the only input left is the face.
2. PRelu, y = x if x > 0 else s*x with a learnt slope s per channel. ONNX Runtime's CPU PRelu
   branches on the sign of every element, so its cost depends on the image (a real face's signs
   mispredict far more than random data's). It is rewritten without branches:
   - every slope <= 1:   y = Max(x, s*x)
   - every slope >= 1:   y = Min(x, s*x)
   - slopes on both sides of 1 (two nodes of SFace): y = x + (s-1)*Min(x, 0)
   The first two are exact; the third differs from s*x by float rounding only. The test
   `derived_sface_embeds_as_the_original` holds every real photo's embedding to the original's.
"""
import sys

import numpy as np
import onnx
from onnx import helper, numpy_helper


def derive(model: onnx.ModelProto) -> onnx.ModelProto:
    graph = model.graph
    weights = {i.name: i for i in graph.initializer}
    inputs = [i for i in graph.input if i.name not in weights]
    del graph.input[:]
    graph.input.extend(inputs)

    nodes, added = [], []
    for node in graph.node:
        if node.op_type != "PRelu" or node.input[1] not in weights:
            nodes.append(node)
            continue
        x, s_name, y = node.input[0], node.input[1], node.output[0]
        s = numpy_helper.to_array(weights[s_name])
        if s.max() <= 1.0 or s.min() >= 1.0:
            sx = f"{y}__sx"
            nodes.append(helper.make_node("Mul", [x, s_name], [sx], name=f"{node.name}__mul"))
            op = "Max" if s.max() <= 1.0 else "Min"
            nodes.append(helper.make_node(op, [x, sx], [y], name=f"{node.name}__{op.lower()}"))
        else:
            zero, s1 = f"{node.name}__zero", f"{node.name}__slope_minus_one"
            added.append(numpy_helper.from_array(np.zeros((), dtype=s.dtype), zero))
            added.append(numpy_helper.from_array((s - 1.0).astype(s.dtype), s1))
            neg, scaled = f"{y}__neg", f"{y}__scaled"
            nodes.append(helper.make_node("Min", [x, zero], [neg], name=f"{node.name}__min"))
            nodes.append(helper.make_node("Mul", [neg, s1], [scaled], name=f"{node.name}__mul"))
            nodes.append(helper.make_node("Add", [x, scaled], [y], name=f"{node.name}__add"))
    del graph.node[:]
    graph.node.extend(nodes)
    graph.initializer.extend(added)
    onnx.checker.check_model(model)
    return model


def main() -> None:
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    model = derive(onnx.load(sys.argv[1]))
    onnx.save(model, sys.argv[2])


if __name__ == "__main__":
    main()
