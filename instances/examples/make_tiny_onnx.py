"""Write ``tiny-mlp.onnx``: a two-layer perceptron, the ONNX example of the README.

    python instances/examples/make_tiny_onnx.py        # needs the onnx package

x [N, 32] -> MatMul W1 [32, 64] -> Add b1 -> Relu -> MatMul W2 [64, 10]
-> Add b2 -> Softmax -> y [N, 10], float32, batch dimension N symbolic (so
``--batch 8`` / ``-I batch=8`` scales the activations). The weights are
constants written by a seeded generator: the file is the same on every run.
"""

from __future__ import annotations

import os
import random

import onnx
from onnx import TensorProto, helper

HERE = os.path.dirname(os.path.abspath(__file__))
SIZES = (32, 64, 10)  # input, hidden, classes


def weights(name: str, rows: int, cols: int, rng: random.Random) -> onnx.TensorProto:
    """A ``rows × cols`` float32 initializer (``cols`` alone when ``rows`` is 0: a bias)."""
    dims = [rows, cols] if rows else [cols]
    n = rows * cols if rows else cols
    return helper.make_tensor(name, TensorProto.FLOAT, dims, [round(rng.uniform(-0.1, 0.1), 4) for _ in range(n)])


def tiny_mlp() -> onnx.ModelProto:
    rng = random.Random(0)
    d_in, d_hid, d_out = SIZES
    init = [weights("W1", d_in, d_hid, rng), weights("b1", 0, d_hid, rng),
            weights("W2", d_hid, d_out, rng), weights("b2", 0, d_out, rng)]
    nodes = [
        helper.make_node("MatMul", ["x", "W1"], ["h1"], name="fc1"),
        helper.make_node("Add", ["h1", "b1"], ["h1b"], name="fc1_bias"),
        helper.make_node("Relu", ["h1b"], ["a1"], name="relu1"),
        helper.make_node("MatMul", ["a1", "W2"], ["h2"], name="fc2"),
        helper.make_node("Add", ["h2", "b2"], ["logits"], name="fc2_bias"),
        helper.make_node("Softmax", ["logits"], ["y"], name="softmax", axis=1),
    ]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", d_in])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", d_out])
    graph = helper.make_graph(nodes, "tiny-mlp", [x], [y], initializer=init)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], producer_name="memopt-example")
    model.ir_version = 8  # readable by onnx >= 1.10
    onnx.checker.check_model(model)
    return model


def main() -> None:
    path = os.path.join(HERE, "tiny-mlp.onnx")
    onnx.save(tiny_mlp(), path)
    print(f"{path}: {os.path.getsize(path)} bytes")


if __name__ == "__main__":
    main()
