"""The ONNX importer, on the models the onnx package ships and on hand-built ones."""

from __future__ import annotations

import glob
import os

import pytest

onnx = pytest.importorskip("onnx", reason="the onnx extra is not installed (pip install 'memopt[onnx]')")
from onnx import TensorProto, helper  # noqa: E402

from memopt import MemoptError, Plan, evaluate, load_instance, schedule_peak  # noqa: E402
from memopt.cli import main  # noqa: E402
from memopt.importers.onnx import load_onnx, parse_dims  # noqa: E402

DATA = os.path.join(os.path.dirname(onnx.__file__), "backend", "test", "data")
LIGHT = sorted(glob.glob(os.path.join(DATA, "light", "*.onnx")))
SHIPPED = sorted(glob.glob(os.path.join(DATA, "**", "*.onnx"), recursive=True))


def plain_valid(inst) -> bool:
    ev = evaluate(inst, Plan.from_order(inst, inst.topological_order), allow_recompute=False, allow_offload=False)
    return ev.valid


def test_the_onnx_package_ships_its_light_models():
    names = {os.path.basename(p) for p in LIGHT}
    assert {"light_resnet50.onnx", "light_densenet121.onnx", "light_vgg19.onnx", "light_squeezenet.onnx",
            "light_shufflenet.onnx", "light_inception_v1.onnx"} <= names


@pytest.mark.parametrize("path", LIGHT, ids=[os.path.basename(p)[6:-5] for p in LIGHT])
def test_every_shipped_onnx_model_imports_and_its_training_graph_is_valid(path):
    fwd = load_instance(path)
    assert fwd.n > 10 and plain_valid(fwd)
    assert fwd.units == {"size": "B", "time": "ns"} and fwd.meta["source"] == "onnx"
    train = load_instance(path, train=True, batch=2)
    assert train.n > fwd.n and plain_valid(train)
    assert any(t.id == "loss" for t in train.tasks)
    # parameter gradients are results of the size of the parameters
    grads = sum(train.size[j] for j in train.results if train.data[j].id.endswith(".params"))
    assert 0.99 * fwd.meta["parameter_bytes"] <= grads <= fwd.meta["parameter_bytes"]


def test_every_onnx_model_the_package_ships_imports():
    # light/ (real networks), simple/ (sequences, shapes), pytorch-converted/, pytorch-operator/
    assert len(SHIPPED) >= 140
    for path in SHIPPED:
        for train in (False, True):
            inst = load_onnx(path, train=train, batch=3)
            assert plain_valid(inst), path


def test_sequences_own_copies_of_their_tensors(tmp_path):
    vi = [helper.make_tensor_value_info(n, TensorProto.FLOAT, [2, k]) for n, k in (("x", 1), ("y", 2), ("z", 3))]
    out = helper.make_tensor_value_info("out", TensorProto.FLOAT, None)
    at = helper.make_tensor_value_info("at", TensorProto.FLOAT, None)
    nodes = [helper.make_node("SequenceConstruct", ["x", "y", "z"], ["s"]),
             helper.make_node("SequenceInsert", ["s", "x"], ["s2"]),
             helper.make_node("ConcatFromSequence", ["s2"], ["out"], axis=1),
             helper.make_node("SequenceAt", ["s2", "i"], ["at"])]
    i = helper.make_tensor_value_info("i", TensorProto.INT64, [])
    model = helper.make_model(helper.make_graph(nodes, "seq", vi + [i], [out, at]),
                              opset_imports=[helper.make_opsetid("", 13)])
    path = tmp_path / "seq.onnx"
    onnx.save(model, str(path))
    inst = load_onnx(path)
    size = {d.id: d.size for d in inst.data}
    assert size["s"] == 2 * 6 * 4 and size["s2"] == 2 * 7 * 4
    assert size["out"] == 2 * 7 * 4 and size["at"] == 2 * 3 * 4  # at most the largest element


def test_resnet50_sizes_scale_with_the_batch_and_params_are_a_fixed_offset():
    path = next(p for p in LIGHT if p.endswith("light_resnet50.onnx"))
    b1 = load_onnx(path)
    b4 = load_onnx(path, batch=4)
    assert b1.n == b4.n
    assert all(4 * s1 == s4 for s1, s4 in zip(b1.size, b4.size))
    inp = b1.data[b1.datum_index["gpu_0/data_0"]]
    assert inp.size == 3 * 224 * 224 * 4 and not b1.can_recompute[b1.task_index["gpu_0/data_0"]]
    # the 53 convolutions' weights are folded constants (ConstantOfShape), not tasks
    assert sum(1 for t in b1.tasks if (t.meta or {}).get("op") == "ConstantOfShape") == 0
    assert sum(1 for t in b1.tasks if (t.meta or {}).get("op") == "Conv") == 53
    assert 100e6 < b1.meta["parameter_bytes"] < 105e6  # 25.6M float parameters
    withp = load_onnx(path, count_params=True)
    assert schedule_peak(withp, withp.topological_order) == schedule_peak(b1, b1.topological_order) \
        + b1.meta["parameter_bytes"]


def tiny_model(*, symbolic: bool = False, extra_dim: bool = False):
    """x[N,8] -> MatMul(W 8x16) -> Relu -> Reshape[N,4,4] -> Dropout -> Flatten -> Gemm(16x3) -> y."""
    first = "N" if symbolic else 2
    shape = [first, 8] if not extra_dim else [first, "seq", 8]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    inits = [
        helper.make_tensor("W", TensorProto.FLOAT, [8, 16], [0.0] * 128),
        helper.make_tensor("shape", TensorProto.INT64, [3], [-1, 4, 4]),
        helper.make_tensor("G", TensorProto.FLOAT, [16, 3], [0.0] * 48),
    ]
    nodes = [
        helper.make_node("MatMul", ["x", "W"], ["h"], name="mm"),
        helper.make_node("Relu", ["h"], ["r"]),
        helper.make_node("Reshape", ["r", "shape"], ["v"]),
        helper.make_node("Dropout", ["v"], ["d", "mask"]),
        helper.make_node("Flatten", ["d"], ["f"]),
        helper.make_node("Gemm", ["f", "G"], ["y"]),
    ]
    g = helper.make_graph(nodes, "tiny", [x], [y], initializer=inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])


def test_tiny_model_sizes_aliases_and_flops(tmp_path):
    path = tmp_path / "tiny.onnx"
    onnx.save(tiny_model(), str(path))
    inst = load_onnx(path, flops_per_second=1e12, bytes_per_second=1e12)
    size = {d.id: d.size for d in inst.data}
    assert size["x"] == 2 * 8 * 4 and size["h"] == 2 * 16 * 4 and size["r"] == 2 * 16 * 4
    assert size["v"] == size["d"] == size["f"] == 0  # Reshape, Dropout, Flatten alias r
    assert "mask" not in size  # read by nobody: the op's workspace
    assert inst.workspace[inst.task_index["d"]] == 2 * 16 * 1  # a bool mask
    readers = set(inst.data[inst.datum_index["r"]].consumers)
    assert readers == {"v", "d", "f", "y"}  # every reader of an alias keeps r alive
    t = dict(zip((t.id for t in inst.tasks), inst.time))
    # MatMul 2x8 @ 8x16: 2*2*16*8 = 512 flops = 0.512 ns; it moves 64 + 512 + 128 bytes = 0.704 ns
    assert t["h"] == 1 and t["v"] == 0
    assert inst.meta["parameter_bytes"] == (128 + 48) * 4 + 3 * 8
    assert [inst.data[j].id for j in inst.results] == ["y"]


def test_tiny_model_batch_and_symbolic_dims(tmp_path):
    path = tmp_path / "sym.onnx"
    onnx.save(tiny_model(symbolic=True), str(path))
    a = load_onnx(path)
    b = load_onnx(path, batch=5)
    assert a.data[a.datum_index["x"]].size == 8 * 4 and b.data[b.datum_index["x"]].size == 5 * 8 * 4
    path2 = tmp_path / "seq.onnx"
    onnx.save(tiny_model(symbolic=True, extra_dim=True), str(path2))
    with pytest.raises(MemoptError, match="'seq'.*dims"):
        load_onnx(path2)
    assert parse_dims("seq=3, k=2") == {"seq": 3, "k": 2}
    with pytest.raises(MemoptError, match="not an integer"):
        parse_dims("seq=x")


def test_training_graph_of_the_tiny_model(tmp_path):
    path = tmp_path / "tiny.onnx"
    onnx.save(tiny_model(), str(path))
    inst = load_onnx(path, train=True, count_params=True)
    assert plain_valid(inst)
    assert inst.tasks[-1].id == "output" and "output" in inst.data[inst.datum_index["parameters"]].consumers
    grads = {inst.data[j].id: inst.size[j] for j in range(inst.m) if inst.data[j].id.endswith(".params")}
    assert grads == {"grad:h.params": 128 * 4, "grad:y.params": 48 * 4}
    assert not inst.can_recompute[inst.task_index["loss"]]


def test_user_mistakes_are_clear_errors(tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a protobuf at all \x00\xff")
    with pytest.raises(MemoptError, match="not a readable ONNX model"):
        load_instance(bad)
    with pytest.raises(MemoptError, match="no such file"):
        load_instance(tmp_path / "missing.onnx")
    good = tmp_path / "tiny.onnx"
    onnx.save(tiny_model(), str(good))
    with pytest.raises(MemoptError, match="unknown ONNX importer option.*colour"):
        load_instance(good, colour="red")
    with pytest.raises(MemoptError, match="batch must be a positive integer"):
        load_instance(good, batch=0)
    with pytest.raises(MemoptError, match="flops_per_second must be a positive"):
        load_instance(good, flops_per_second=-1.0)


def test_convert_command_with_train_and_batch(tmp_path, capsys):
    src = tmp_path / "tiny.onnx"
    onnx.save(tiny_model(), str(src))
    out = tmp_path / "tiny-train.yaml"
    assert main(["convert", str(src), str(out), "--train", "--batch", "4"]) == 0
    inst = load_instance(out)
    assert inst.name == "tiny-train" and plain_valid(inst)
    assert inst.data[inst.datum_index["x"]].size == 4 * 8 * 4
    assert main(["convert", str(src), str(out), "-I", "colour=red"]) == 2
    assert "unknown ONNX importer option" in capsys.readouterr().err
