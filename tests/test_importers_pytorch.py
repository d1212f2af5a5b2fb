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
    """The graph inputs (and the parameters, buffers and optimizer states counted as data) are arguments
    PyTorch holds outside the graph: size them 0 to compare."""
    inputs = {t.id for t in inst.tasks if (t.meta or {}).get("op") in ("input", "parameter", "buffer",
                                                                          "optimizer_state")}
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
    "llama": lambda: (zoo.Llama(vocab=100, n_ctx=16, d=32, n_layer=2, n_head=4, n_kv_head=2, hidden=48),
                      torch.zeros(2, 16, dtype=torch.long), torch.zeros(2, 16, dtype=torch.long), zoo._lm_loss),
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
    assert set(zoo.ZOO) == {"resnet18", "resnet50", "vgg16", "unet", "mobilenetv2", "gpt2", "vit",
                            "gpt2-medium", "llama", "llama-1b", "llama-70b"}
    assert {n for n, s in zoo.ZOO.items() if not s.shipped} == {"gpt2-medium", "llama", "llama-1b", "llama-70b"}
    assert "memopt_zoo" in sys.modules


# ------------------------------------------------------------------ the optimizer step
OPTIMIZER_CASES = [(o, h) for o in ("sgd", "sgd-momentum", "adam") for h in (False, True)]


@pytest.mark.parametrize("name", ["gpt2", "resnet18", "llama"])
def test_optimizer_step_peak_equals_pytorch_live_storage(name):
    """With the update of every parameter in the traced program (a functional optimizer: new parameter
    and states allocated, old ones dropped), the traced order's peak is still PyTorch's."""
    module, x, y, loss = SMALL[name]()
    for optimizer, host in OPTIMIZER_CASES if name != "resnet18" else [("adam", False), ("sgd-momentum", True)]:
        g = trace_training(module, x, loss=loss, targets=y, optimizer=optimizer, optimizer_on_host=host,
                           bandwidth=16e9)
        measured = pytorch_peak(g)
        for keep_views in (True, False):
            inst = to_instance(g, keep_views=keep_views)
            z = without_inputs(inst)
            assert schedule_peak(z, inst.topological_order) == measured, (optimizer, host, keep_views)
            ev = evaluate(inst, Plan.from_order(inst, inst.topological_order))
            assert ev.valid, ev.violation


def test_adam_state_gradients_and_parameters_have_their_sizes_and_lifetimes():
    m = Tiny()
    x, y = torch.randn(16, 4), torch.randn(16, 8)
    plain = import_module(m, x, train=True, loss=F.mse_loss, targets=y)
    inst = import_module(m, x, train=True, loss=F.mse_loss, targets=y, optimizer="adam")
    pbytes = 4 * (4 * 64 + 64 + 64 * 8 + 8)
    assert inst.meta["parameter_bytes"] == pbytes and inst.meta["optimizer_state_bytes"] == 2 * pbytes
    assert inst.meta["optimizer"] == "adam" and not inst.meta["optimizer_on_host"]
    order = inst.topological_order
    pos = {inst.tasks[v].id: k for k, v in enumerate(order)}
    inputs = [t.id for t in inst.tasks if (t.meta or {}).get("op") == "input"]
    updates = [t.id for t in inst.tasks if (t.meta or {}).get("op") == "optimizer.adam"]
    assert len(updates) == 4
    results = {inst.data[j].id for j in inst.results}
    for u in updates:
        v = inst.task_index[u]
        ins = [inst.data[j] for j in inst.inputs[v]]
        param = next(d for d in ins if (inst.tasks[inst.task_index[d.producer]].meta or {}).get("op") == "parameter")
        states = [d for d in ins if (inst.tasks[inst.task_index[d.producer]].meta or {}).get("op") == "optimizer_state"]
        grads = [d for d in ins if d not in states and d is not param]
        assert [d.size for d in states] == [param.size] * 2 and {d.id for d in states} == {
            f"{param.id}.exp_avg", f"{param.id}.exp_avg_sq"}
        # parameter and states exist from the start: their sources run before every graph input
        for d in [param] + states:
            assert pos[d.producer] < min(pos[i] for i in inputs)
            assert not inst.can_recompute[inst.task_index[d.producer]]
        # the gradient (its storage) dies at the update; the states live until it
        assert grads and all(max(pos[c] for c in d.consumers) == pos[u] for d in grads)
        assert all(d.consumers == (u,) for d in states)
        # the new parameter and states are results (needed at the end) of the same sizes
        outs = [inst.data[j] for j in inst.outputs[v]]
        assert [d.size for d in outs] == [param.size] * 3 and {d.id for d in outs} <= results
    # the step holds, on top of the plain one, the parameters and states (and the update's new copies)
    assert schedule_peak(inst, order) >= schedule_peak(plain, plain.topological_order) + 3 * pbytes
    ev = evaluate(inst, Plan.from_order(inst, order), allow_recompute=False, allow_offload=False)
    assert ev.valid, ev.violation


def test_optimizer_on_host_and_errors():
    m = Tiny()
    x, y = torch.randn(16, 4), torch.randn(16, 8)
    inst = import_module(m, x, train=True, loss=F.mse_loss, targets=y, optimizer="sgd-momentum",
                         optimizer_on_host=True, bandwidth=16e9)
    assert not any((t.meta or {}).get("op") == "optimizer_state" for t in inst.tasks)
    assert inst.meta["optimizer_on_host"] and inst.meta["optimizer_state_bytes"] == inst.meta["parameter_bytes"]
    u = inst.task_index["sgd_momentum_a_weight"]
    assert inst.time[u] == -(-2 * 4 * 4 * 64 // 16)  # (|g| + |p|) bytes at 16 bytes/ns
    assert [inst.size[j] for j in inst.outputs[u]] == [4 * 4 * 64]
    from memopt import MemoptError

    with pytest.raises(MemoptError, match="needs the bandwidth"):
        import_module(m, x, train=True, loss=F.mse_loss, targets=y, optimizer="adam", optimizer_on_host=True)
    with pytest.raises(MemoptError, match="needs train=True"):
        import_module(m, x, optimizer="adam")
    with pytest.raises(MemoptError, match="unknown"):
        import_module(m, x, train=True, loss=F.mse_loss, targets=y, optimizer="adagrad")


def test_functional_updates_compute_the_optimizers_step():
    """The update functions the traced program calls are the optimizers' (checked against torch.optim)."""
    from memopt.importers.optimizer import UPDATES

    torch.manual_seed(0)
    for name, cls, kw in (("sgd", torch.optim.SGD, {"lr": 1e-2}),
                          ("sgd-momentum", torch.optim.SGD, {"lr": 1e-2, "momentum": 0.9}),
                          ("adam", torch.optim.Adam, {"lr": 1e-3})):
        p0, g = torch.randn(5), torch.randn(5)
        p = torch.nn.Parameter(p0.clone())
        opt = cls([p], **kw)
        p.grad = g.clone()
        opt.step()  # first step: momentum buffer = g, Adam's moments from zero
        states = [torch.zeros(5) for _ in range({"sgd": 0, "sgd-momentum": 1, "adam": 2}[name])]
        out = UPDATES[name, False](p0, g, *states)
        expect = p0 - 1e-2 * g if name == "sgd-momentum" else None  # buf' = g + 0.9·0 = g
        assert torch.allclose(out[0], p.detach(), atol=1e-6), name
        if expect is not None:
            assert torch.allclose(out[0], expect)
        host = UPDATES[name, True](p0, g, *[s.clone() for s in states])
        assert torch.allclose(host[0], out[0]) and len(host) == 1


# ------------------------------------------------------------------ the Llama-style decoder and GPT-2 medium
def test_llama_runs_and_is_causal():
    torch.manual_seed(0)
    m = zoo.Llama(vocab=50, n_ctx=16, d=32, n_layer=2, n_head=4, n_kv_head=2, hidden=48)
    x = torch.randint(0, 50, (2, 12))
    y = m(x)
    assert y.shape == (2, 12, 50) and torch.isfinite(y).all()
    x2 = x.clone()
    x2[:, 8:] = (x2[:, 8:] + 1) % 50  # changing later tokens leaves the earlier logits alone
    assert torch.allclose(m(x2)[:, :8], y[:, :8], atol=1e-5) and not torch.allclose(m(x2)[:, 8:], y[:, 8:])
    with pytest.raises(ValueError, match="multiple"):
        zoo.Llama(d=30, n_head=4)


def test_llama_and_gpt2_medium_build_and_trace_on_meta():
    with torch.device("meta"):
        medium = zoo.gpt2_medium()
        llama = zoo.llama_1b(n_ctx=64, n_layer=1)
        assert sum(p.numel() for p in zoo.llama_1b(n_ctx=64).parameters()) == 1_100_048_384  # TinyLlama-1.1B
    assert sum(p.numel() for p in medium.parameters()) == 354_823_168 and len(medium.blocks) == 24
    tokens = torch.empty(1, 64, dtype=torch.long, device="meta")
    assert medium(tokens).shape == (1, 64, 50257) and llama(tokens).shape == (1, 64, 32000)
    fx = trace_inference(medium, tokens)
    assert sum(op.op == "Linear" for op in fx.ops) == 24 * 4 + 1
    inst = import_module(llama, tokens, train=True, loss=zoo._lm_loss, targets=tokens, optimizer="adam")
    ops = {(t.meta or {}).get("op") for t in inst.tasks}
    assert {"aten.rsqrt", "aten.silu", "aten._softmax", "optimizer.adam"} <= ops
    weights = 4 * sum(p.numel() for p in llama.parameters())
    assert inst.meta["optimizer_state_bytes"] == 2 * weights
    assert inst.meta["parameter_bytes"] == weights + 4 * sum(b.numel() * b.element_size() // 4 for b in llama.buffers())


def test_build_with_an_optimizer(tmp_path, capsys):
    from memopt.cli import main

    assert main(["build", "--only", "llama", "--batch", "1", "--mode", "train", "--optimizer", "adam",
                 "--out", str(tmp_path)]) == 0
    inst = load_instance(tmp_path / "llama-train-adam-b1.yaml")
    assert inst.meta["optimizer"] == "adam" and inst.meta["model"] == "llama" and inst.meta["views"] == "contracted"
    # views kept: another file, not the contracted one overwritten
    assert main(["build", "--only", "llama", "--batch", "1", "--mode", "train", "--optimizer", "adam",
                 "--keep-views", "--out", str(tmp_path)]) == 0
    kept = load_instance(tmp_path / "llama-train-adam-views-b1.yaml")
    assert "views" not in kept.meta and kept.n > inst.n
    assert load_instance(tmp_path / "llama-train-adam-b1.yaml").n == inst.n
    assert main(["build", "--list"]) == 0
    assert "(built with --only)" in capsys.readouterr().out
