"""The PyTorch importer, checked against PyTorch itself.

The central check: the peak of the imported instance under its traced order
equals the peak of live storage that PyTorch holds when it runs the traced
program, measured independently by a dispatch mode that watches every
storage ops create and frees it when its last tensor dies. It holds for the
inference graph (fx and ATen level) and the joint training graph of every
architecture of ``models/`` (small configurations), so sizes, aliases,
outputs, multi-output ops and layer temporaries are modelled as PyTorch runs
them.
"""

from __future__ import annotations

import os
import sys
import weakref

import pytest

torch = pytest.importorskip("torch", reason="the torch extra is not installed (pip install 'memopt[torch]')")
from torch import nn  # noqa: E402
from torch.nn import functional as F  # noqa: E402
from torch.utils._python_dispatch import TorchDispatchMode  # noqa: E402
from torch.utils._pytree import tree_leaves  # noqa: E402

from memopt import Datum, Plan, evaluate, load_instance, schedule_peak  # noqa: E402
from memopt.commands.build import build_instance, load_zoo  # noqa: E402
from memopt.importers.nn import to_instance  # noqa: E402
from memopt.importers.pytorch import import_module, trace_inference, trace_training  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
zoo = load_zoo(os.path.join(ROOT, "models"))


class LiveStorage(TorchDispatchMode):
    """Peak bytes of the storages created by ops, each freed when its last tensor dies."""

    def __init__(self, external):
        super().__init__()
        self.external = {t.untyped_storage()._cdata for t in external}
        self.live: dict[int, list[int]] = {}
        self.cur = self.peak = 0

    def _dead(self, k):
        e = self.live[k]
        e[1] -= 1
        if e[1] == 0:
            self.cur -= e[0]
            del self.live[k]

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in tree_leaves(out):
            if isinstance(t, torch.Tensor):
                k = t.untyped_storage()._cdata
                if k in self.external:
                    continue
                if k not in self.live:
                    self.live[k] = [t.untyped_storage().nbytes(), 0]
                    self.cur += self.live[k][0]
                    self.peak = max(self.peak, self.cur)
                self.live[k][1] += 1
                weakref.finalize(t, self._dead, k)
        return out


def pytorch_peak(graph) -> int:
    """Run the traced GraphModule (it drops each value after its last use) and measure."""
    gm, args = graph.traced
    ext = [t for t in tree_leaves(args) if isinstance(t, torch.Tensor)]
    ext += list(gm.parameters()) + list(gm.buffers())
    mode = LiveStorage(ext)
    with torch.no_grad(), mode:
        gm(*args)
    return mode.peak


def without_inputs(inst):
    """The graph inputs are arguments PyTorch holds outside the graph: size them 0 to compare."""
    inputs = {t.id for t in inst.tasks if (t.meta or {}).get("op") == "input"}
    return inst.replace(data=[Datum(d.id, d.producer, d.consumers, 0 if d.producer in inputs else d.size)
                              for d in inst.data])


SMALL = {
    "resnet18": lambda: (zoo.resnet18(10), torch.randn(2, 3, 32, 32), torch.zeros(2, dtype=torch.long),
                         F.cross_entropy),
    "mobilenetv2": lambda: (zoo.mobilenet_v2(10), torch.randn(2, 3, 32, 32), torch.zeros(2, dtype=torch.long),
                            F.cross_entropy),
    "unet": lambda: (zoo.UNet(3, 2, 8), torch.randn(2, 3, 32, 32), torch.zeros(2, 32, 32, dtype=torch.long),
                     F.cross_entropy),
    "vgg": lambda: (zoo.VGG([8, "M", 16, "M", 16, "M", 16, "M", 16, "M"], 10), torch.randn(2, 3, 32, 32),
                    torch.zeros(2, dtype=torch.long), F.cross_entropy),
    "gpt2": lambda: (zoo.GPT2(vocab=100, n_ctx=16, d=32, n_layer=2, n_head=4), torch.zeros(2, 16, dtype=torch.long),
                     torch.zeros(2, 16, dtype=torch.long), zoo._lm_loss),
    "vit": lambda: (zoo.ViT(image=32, patch=8, d=32, n_layer=2, n_head=4, num_classes=10), torch.randn(2, 3, 32, 32),
                    torch.zeros(2, dtype=torch.long), F.cross_entropy),
}


@pytest.mark.parametrize("name", sorted(SMALL))
def test_traced_order_peak_equals_pytorch_live_storage(name):
    module, x, y, loss = SMALL[name]()
    if name == "vgg":  # the 7x7x512 head of the 224x224 model does not fit a 32x32 image
        module.classifier = nn.Linear(16, 10)
    graphs = [trace_inference(module, x), trace_training(module, x, loss=loss, targets=y)]
    if name in ("resnet18", "gpt2"):
        graphs.append(trace_inference(module, x, level="aten"))
    for g in graphs:
        measured = pytorch_peak(g)
        for keep_views in (True, False):
            inst = without_inputs(to_instance(g, keep_views=keep_views))
            assert schedule_peak(inst, inst.topological_order) == measured, (g.meta, keep_views)


class InPlace(nn.Module):
    """torchvision style: ReLU(inplace=True) and ``out += identity``."""

    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(4, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)
        self.relu = nn.ReLU(inplace=True)
        self.c2 = nn.Conv2d(4, 4, 3, padding=1)

    def forward(self, x):
        y = self.c2(self.relu(self.bn(self.c1(x))))
        y += x
        return F.relu(y, inplace=True)


def test_in_place_operations_alias_and_are_not_recomputed():
    m, x = InPlace(), torch.randn(2, 4, 8, 8)
    for g in (trace_inference(m, x), trace_inference(m, x, level="aten"),
              trace_training(m, x, loss=lambda o: o.pow(2).mean())):
        measured = pytorch_peak(g)
        for keep_views in (True, False):
            inst = to_instance(g, keep_views=keep_views)
            assert schedule_peak(without_inputs(inst), inst.topological_order) == measured
            # an in-place result is an alias (size 0) that takes time and stays a task
            inplace = [v for v, t in enumerate(inst.tasks) if (t.meta or {}).get("op") in ("aten.relu_", "ReLU")]
            assert inplace and all(inst.time[v] > 0 and inst.output_size[v] == 0 and not inst.can_recompute[v]
                                   for v in inplace)


class Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Linear(4, 64)
        self.b = nn.Linear(64, 8)
        self.drop = nn.Dropout(0.5)

    def forward(self, x):
        h = torch.relu(self.a(x))
        return self.b(self.drop(h).view(-1, 8, 8).transpose(1, 2).reshape(-1, 64))


def test_inference_instance_sizes_flops_and_views():
    m = Tiny()
    inst = import_module(m, torch.randn(16, 4), flops_per_second=1e12, bytes_per_second=1e15)
    size = {d.id: d.size for d in inst.data}
    assert size["x"] == 16 * 4 * 4 and size["a"] == size["relu"] == 16 * 64 * 4
    assert size["drop"] == size["view"] == size["transpose"] == 0  # eval dropout and views alias relu
    assert size["reshape"] == 16 * 64 * 4  # reshape of a transposed view copies
    t = dict(zip((t.id for t in inst.tasks), inst.time))
    assert t["a"] == 2 * 16 * 64 * 4 // 1000 + 1  # 8192 flops at 1 TFLOP/s = 8.192 ns -> 9
    assert t["view"] == 0
    assert [inst.data[j].id for j in inst.results] == ["b"]
    # the module given is untouched: weights stay real, mode stays train
    assert m.a.weight.device.type == "cpu" and m.training


def test_training_instance_marks_loss_inputs_and_random_ops():
    m = Tiny()
    inst = import_module(m, torch.randn(16, 4), train=True, loss=F.mse_loss, targets=torch.randn(16, 8))
    ev = evaluate(inst, Plan.from_order(inst, inst.topological_order), allow_recompute=False, allow_offload=False)
    assert ev.valid
    ops = {t.id: (t.meta or {}).get("op") for t in inst.tasks}
    no_rc = {t.id for t, rc in zip(inst.tasks, inst.can_recompute) if not rc}
    assert {"inputs_1", "tgts_1", "output"} <= no_rc  # data, targets, the end
    # dropout: a buffer (empty_like) filled in place with random bits (bernoulli_) then scaled in place
    # (div_): none of the three can be redone alone
    assert {"empty_like", "bernoulli_", "div_"} <= no_rc and ops["bernoulli_"].startswith("aten.bernoulli_")
    assert inst.data[inst.datum_index["bernoulli_"]].size == 0  # an in-place result aliases its input
    assert any(ops[v] == "aten.mse_loss" for v in no_rc)  # the loss
    # the gradients of the 4 parameter tensors are kept to the end by the output task
    assert len(inst.inputs[inst.task_index["output"]]) >= 5
    assert inst.meta["graph"] == "training" and inst.meta["parameter_bytes"] == 4 * (4 * 64 + 64 + 64 * 8 + 8)


def test_count_params_and_errors():
    m = Tiny()
    a = import_module(m, torch.randn(16, 4))
    b = import_module(m, torch.randn(16, 4), count_params=True)
    assert schedule_peak(b, b.topological_order) == schedule_peak(a, a.topological_order) + a.meta["parameter_bytes"]

    class Frozen(nn.Module):
        def forward(self, x):
            return x * 2

    from memopt import MemoptError

    with pytest.raises(MemoptError, match="no trainable parameter"):
        import_module(Frozen(), torch.randn(2), train=True)
    with pytest.raises(MemoptError, match="unknown tracing level"):
        import_module(m, torch.randn(16, 4), level="bytecode")


def test_build_reproduces_the_shipped_instance(tmp_path):
    spec = zoo.ZOO["resnet18"]
    built = build_instance(spec, "infer", 1)
    shipped = os.path.join(ROOT, "instances", "nn", "resnet18-infer-b1.yaml")
    assert built == load_instance(shipped)
    from memopt.cli import main

    assert main(["build", "--only", "vgg16", "--batch", "1", "--mode", "infer", "--out", str(tmp_path)]) == 0
    assert load_instance(tmp_path / "vgg16-infer-b1.yaml") == load_instance(
        os.path.join(ROOT, "instances", "nn", "vgg16-infer-b1.yaml"))


def test_zoo_is_complete():
    assert set(zoo.ZOO) == {"resnet18", "resnet50", "vgg16", "unet", "mobilenetv2", "gpt2", "vit"}
    assert "memopt_zoo" in sys.modules
