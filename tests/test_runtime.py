"""The runtime (memopt.runtime, memopt run): planned training steps run in PyTorch, measured.

Every architecture of models/ at a test size (models/tiny.py), several budgets, recomputation and
offloading: the loss, every gradient and every buffer equal the plain PyTorch step bit for bit
(torch.equal); the evaluator's predicted peak equals both measures of the fast memory (live storages,
and the runtime's own accounting, at every point); the measured peak is within the budget and does
not grow when the budget shrinks. CPU only; CUDA tests are skipped without CUDA.
"""

from __future__ import annotations

import json
import math
import os
from types import SimpleNamespace

import pytest

torch = pytest.importorskip("torch")

from torch import nn  # noqa: E402
from torch.nn import functional as F  # noqa: E402

from memopt.cli import main  # noqa: E402
from memopt.commands._targets import load_target  # noqa: E402
from memopt.core.errors import MemoptError  # noqa: E402
from memopt.core.evaluate import evaluate  # noqa: E402
from memopt.core.instance import Datum, Instance, Task  # noqa: E402
from memopt.core.plan import Plan  # noqa: E402
from memopt.importers.nn import NNGraph, Op, Tensor, traced_order  # noqa: E402
from memopt.runtime import (  # noqa: E402
    compare,
    parse_budget,
    plan_step,
    prepare_step,
    transfer,
)
from memopt.runtime.fusion import fuse_inplace  # noqa: E402
from memopt.runtime.measure import storage_tracker  # noqa: E402
from memopt.runtime.normalize import free_before_recompute  # noqa: E402
from memopt.runtime.values import FastMemory  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = os.path.join(ROOT, "models", "tiny.py")
ARCHS = ["gpt2", "vit", "vgg16", "resnet18", "resnet50", "unet", "mobilenetv2", "llama"]
# the lowest budget tested (a ratio of the traced order's peak), down to what is feasible at test size
LOW = {"gpt2": "0.4x", "vit": "0.45x", "vgg16": "0.6x", "resnet18": "0.4x", "resnet50": "0.4x", "unet": "0.6x",
       "mobilenetv2": "0.4x", "llama": "0.4x"}
FAST = {"method": "planner", "time_limit": 20, "restarts": 0}   # one eviction score: a plan in well under a second
RECOMPUTE = dict(FAST, score="lookahead")                        # mostly recomputes
OFFLOAD = dict(FAST, score="belady")                             # offloads a lot


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """One intra-op thread: steps of test-size networks are faster so (and do not fight other jobs)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


_PREPARED: dict = {}


def prepared(name: str, **kw):
    key = (name, tuple(sorted(kw.items())))
    if key not in _PREPARED:
        t = load_target(f"{TINY}:{name}")
        _PREPARED[key] = (t, prepare_step(t.module, t.inputs, t.targets, t.loss, **kw))
    return _PREPARED[key]


def check_step(step, t):
    """Both measures equal the prediction at every point, within the budget; loss, gradients, buffers equal."""
    m = step.measure(t.inputs, t.targets)
    assert m.trace_equal, m.first_difference
    assert m.measured_peak == m.accounted_peak == m.predicted_peak == step.evaluation.peak
    assert m.measured_peak <= step.budget
    c = compare(step, t.module, t.inputs, t.targets, t.loss)
    assert c.loss_equal and c.gradients_equal and c.buffers_equal, (c.different, c.max_grad_diff)
    return m


# ------------------------------------------------------------ every architecture
def test_every_architecture_has_a_test_size():
    """models/tiny.py covers every architecture of the zoo (the zoo's other entries are sizes of them)."""
    from memopt.commands.build import load_zoo

    zoo = load_zoo().ZOO
    assert set(ARCHS) <= set(zoo)
    assert {name.split("-")[0] for name in zoo} == set(ARCHS)



@pytest.mark.parametrize("name", ARCHS)
def test_architecture_low_budgets(name):
    """Recomputation at 0.6x and offloading at the lowest budget: equal results, measured = predicted."""
    t, prep = prepared(name)
    s6 = prep.plan("0.6x", **RECOMPUTE)
    assert s6.evaluation.recomputes > 0
    m6 = check_step(s6, t)
    low = prep.plan(LOW[name], **OFFLOAD)
    m_low = check_step(low, t)
    assert m_low.measured_peak <= m6.measured_peak or low.budget >= s6.budget


@pytest.mark.slow
@pytest.mark.parametrize("name", ARCHS)
def test_architecture_budget_sweep(name):
    """1.0x, 0.8x, 0.6x, the lowest: the measured peak never exceeds the budget and never grows when it shrinks."""
    t, prep = prepared(name)
    peaks = []
    for budget, opts in [("1.0x", FAST), ("0.8x", OFFLOAD), ("0.6x", RECOMPUTE), (LOW[name], RECOMPUTE)]:
        peaks.append(check_step(prep.plan(budget, **opts), t).measured_peak)
    assert peaks == sorted(peaks, reverse=True)


def test_measured_peak_monotone_in_the_budget():
    t, prep = prepared("gpt2")
    peaks, budgets = [], []
    for budget in ["1.0x", "0.8x", "0.6x", "0.4x"]:
        s = prep.plan(budget, **RECOMPUTE)
        peaks.append(check_step(s, t).measured_peak)
        budgets.append(s.budget)
    assert budgets == sorted(budgets, reverse=True)
    assert peaks == sorted(peaks, reverse=True)
    assert all(p <= b for p, b in zip(peaks, budgets))


@pytest.mark.parametrize("inline", [True, False])
def test_offloading_only(inline, monkeypatch):
    """No recomputation: the plan moves data to host memory and back, copies made at once or by the
    transfer thread beside the computes; still exact, and the host copies are not fast memory."""
    if not inline:
        monkeypatch.setattr(transfer, "INLINE_BYTES", 0)
    t, prep = prepared("resnet50")
    s = prep.plan("0.5x", recompute=False, **OFFLOAD)
    assert s.evaluation.recomputes == 0 and s.evaluation.offloads > 0 and s.evaluation.reloads > 0
    check_step(s, t)


@pytest.mark.parametrize("make", [
    lambda: torch.arange(12.0).reshape(3, 4),                      # dense: a plain clone each way
    lambda: torch.arange(24.0).reshape(4, 6)[1:, ::2],             # a view: its whole storage moves
    lambda: torch.arange(6, dtype=torch.int64).reshape(2, 3).t(),  # non-contiguous strides
])
def test_host_store_round_trip(make):
    """A datum comes back from slow memory with its values, shape, strides, offset and storage bytes."""
    x = make()
    host = transfer.HostStore("cpu")
    try:
        host.offload("d", x)
        host.wait()
        y = host.reload("d")
        host.wait()
        assert torch.equal(x, y) and x.dtype == y.dtype and x.stride() == y.stride()
        assert x.storage_offset() == y.storage_offset()
        assert y.untyped_storage().nbytes() == x.untyped_storage().nbytes()
        assert y.untyped_storage().data_ptr() != x.untyped_storage().data_ptr()
        assert torch.equal(host.host_tensor("d"), x)
    finally:
        host.close()


def test_host_buffers_are_reused_from_step_to_step():
    """A large datum's host buffer is filled again at the next step, unless it was handed out."""
    spare: dict = {}
    x = torch.arange(float(transfer.INLINE_BYTES)).reshape(-1, 4)  # 4 bytes per element: above the inline size
    bufs = []
    for step in range(3):
        host = transfer.HostStore("cpu", spare=spare)
        try:
            host.offload("d", x + step)
            host.wait()
            y = host.reload("d")
            host.wait()
            assert torch.equal(y, x + step)
            h = host.copies["d"][0]  # the host buffer (a future until a reload resolved it)
            bufs.append(h.result() if hasattr(h, "result") else h)
            if step == 1:
                kept = host.host_tensor("d")  # handed out: must not be overwritten by the next step
        finally:
            host.close()
    assert bufs[1] is bufs[0] and bufs[2] is not bufs[1]
    assert torch.equal(kept, x + 1) and "d" in spare and spare["d"] is bufs[2]


def test_keep_views():
    """Views kept as tasks: alias data of size 0, re-derived from their root whenever it is (re)computed."""
    t, prep = prepared("gpt2", keep_views=True)
    assert any(d.size == 0 and "view" in str(prep.instance.task(d.producer).meta) for d in prep.instance.data)
    check_step(prep.plan("0.5x", **RECOMPUTE), t)


def test_views_rebuilt_from_their_layout():
    """After a view op has run once, its views are rebuilt by one as_strided on the root (after a reload, a
    recomputation, the next step): the same results, the same measures."""
    t, prep = prepared("gpt2")
    s = prep.plan("0.4x", **OFFLOAD)
    assert s.evaluation.offloads > 0
    s.graph.view_layout.clear()
    check_step(s, t)  # the view ops run, their layouts are kept
    kept = {k: v for k, v in s.graph.view_layout.items() if v}
    assert kept
    # (a view node run as a member of its task's nodes runs its op there, with the task)
    in_tasks = {x for xs in s.graph.task_nodes.values() for x in xs}
    ops = {k: s.graph.nodes[k].target for k in kept if k not in in_tasks}
    assert ops

    def never(*args, **kwargs):
        raise AssertionError("a view op ran although its layout is kept")

    try:
        for k in ops:
            s.graph.nodes[k].target = never
        check_step(s, t)  # every view from its layout now: not one of their ops runs
    finally:
        for k, op in ops.items():
            s.graph.nodes[k].target = op


def test_a_root_with_other_strides_runs_the_view_op():
    """A view's layout holds only for its root's layout: parameters made non-contiguous between steps (same
    shapes, other strides, as a change of memory format does) still give the plain step's gradients."""
    t = load_target(f"{TINY}:gpt2")
    prep = prepare_step(t.module, t.inputs, t.targets, t.loss)
    s = prep.plan("0.5x", **OFFLOAD)
    check_step(s, t)  # the layouts are kept with the contiguous weights
    for p in t.module.parameters():
        if p.dim() == 2:
            p.data = p.data.t().contiguous().t()  # the same values and shape, transposed strides
    assert any(p.dim() == 2 and not p.is_contiguous() for p in t.module.parameters())
    check_step(s, t)


@pytest.mark.parametrize("view, same", [
    (lambda r: r.t(), True),
    (lambda r: r[1:, ::2], True),
    (lambda r: r.reshape(-1), True),
    (lambda r: r.view(torch.int32), False),        # another dtype: as_strided on the root cannot give it
    (lambda r: r.clone(), False),                  # not a view at all
])
def test_view_layout_is_the_views_own_geometry(view, same):
    root = torch.arange(12.0).reshape(3, 4)
    mem = _memory_holding(root)
    x = view(root)
    layout = mem._layout([("v", x)])
    if not same:
        assert layout is None
        return
    (tid, r, size, stride, offset, at), = layout
    y = root.as_strided(size, stride, offset)
    assert (tid, r, at) == ("v", "r", (root.shape, root.stride(), 0))
    assert y.stride() == x.stride() and y.storage_offset() == x.storage_offset()
    assert torch.equal(y, x) and y.untyped_storage().data_ptr() == root.untyped_storage().data_ptr()


def test_conjugate_views_keep_their_op():
    root = torch.arange(4.0).to(torch.complex64)
    assert _memory_holding(root)._layout([("v", root.conj())]) is None


def _memory_holding(root):
    """A fast memory whose one resident datum "r" is ``root``, the root of every view id."""
    mem = FastMemory.__new__(FastMemory)
    mem.sg, mem.params, mem.fast = SimpleNamespace(root=lambda tid: "r"), {}, {"r": root}
    return mem


def test_auto_method():
    """The default method (auto: the planner, then a warm-started model)."""
    t, prep = prepared("vgg16")
    check_step(prep.plan("0.7x", "auto", time_limit=2), t)


def test_counted_parameters():
    """count_params: the parameters are one datum of constant size, in the prediction and in both measures."""
    t, prep = prepared("resnet18", count_params=True)
    params = sum(p.numel() * p.element_size() for p in t.module.parameters())
    counted = prep.instance.meta["parameter_bytes"]   # the parameters and buffers the graph reads
    assert prep.instance.meta["parameters_counted"] and counted >= params
    step = prep.plan("0.7x", offload=False, **RECOMPUTE)
    assert step.parameter_bytes == counted
    m = check_step(step, t)
    assert m.measured_peak > counted


def test_plan_step_in_one_call_and_bytes_budget():
    t = load_target(f"{TINY}:vit")
    step = plan_step(t.module, t.inputs, t.targets, t.loss, budget=400_000, **RECOMPUTE)
    assert step.budget == 400_000
    loss = step(t.inputs, t.targets)
    assert loss.dim() == 0 and all(p.grad is not None for p in t.module.parameters())
    check_step(step, t)


def test_gradients_accumulate_like_backward():
    """A second step adds to .grad, as loss.backward() does."""
    t, prep = prepared("gpt2")
    step = prep.plan("0.6x", **RECOMPUTE)
    for p in t.module.parameters():
        p.grad = None
    step(t.inputs, t.targets)
    once = {k: p.grad.clone() for k, p in t.module.named_parameters()}
    step(t.inputs, t.targets)
    for k, p in t.module.named_parameters():
        assert torch.equal(p.grad, once[k] + once[k])


# ------------------------------------------------------------ randomness
class TwoDropouts(nn.Module):
    """Two parallel branches with dropout: a plan may not swap their random draws."""

    def __init__(self):
        super().__init__()
        self.a = nn.Linear(32, 64)
        self.b = nn.Linear(32, 64)
        self.c = nn.Linear(64, 4)

    def forward(self, x):
        return self.c(F.dropout(self.a(x), 0.5, True) * F.dropout(torch.relu(self.b(x)), 0.3, True))


def test_dropout_recomputation_equal():
    """Dropout (VGG's classifier) is fused into one task that is never recomputed; everything else may be."""
    t, prep = prepared("vgg16")
    inst = prep.instance
    fused = [task for task in inst.tasks if "bernoulli" in str((task.meta or {}).get("op"))]
    assert len(fused) == 2 and not any(task.recompute for task in fused)
    assert any(d.id.startswith("rng:") for d in inst.data)
    step = prep.plan("0.6x", **RECOMPUTE)
    assert step.evaluation.recomputes > 0
    for seed in (0, 1):
        c = compare(step, t.module, t.inputs, t.targets, t.loss, seed=seed)
        assert c.loss_equal and c.gradients_equal


def test_random_ops_keep_their_order():
    torch.manual_seed(0)
    m = TwoDropouts()
    x, y = torch.randn(16, 32), torch.randint(0, 4, (16,))
    prep = prepare_step(m, (x,), (y,), F.cross_entropy)
    inst = prep.instance
    rnd = prep.graph.random_tasks
    assert len(rnd) == 2
    order = list(traced_order(inst))
    i, j = order.index(inst.task_index[rnd[0]]), order.index(inst.task_index[rnd[1]])
    swapped = order[:]
    swapped.remove(inst.task_index[rnd[1]])
    swapped.insert(i, inst.task_index[rnd[1]])
    assert j > i and not evaluate(inst, Plan.from_order(inst, swapped)).valid   # the rng link forbids it
    step = prep.plan("0.7x", **RECOMPUTE)
    check_step(step, SimpleNamespace(module=m, inputs=(x,), targets=(y,), loss=F.cross_entropy))


# ------------------------------------------------------------ pieces
def test_profiled_costs():
    t = load_target(f"{TINY}:resnet18")
    prep = prepare_step(t.module, t.inputs, t.targets, t.loss, cost="profile", profile_runs=1)
    inst = prep.instance
    assert (inst.meta or {}).get("cost") == "profile"
    assert all(isinstance(task.time, int) and task.time >= 0 for task in inst.tasks)
    assert sum(task.time > 0 for task in inst.tasks) > inst.n // 2
    assert inst.machine.bandwidth and inst.machine.bandwidth > 0
    # the block annotation survives the new times (the hierarchical method reads it)
    assert sum(task.group is not None for task in inst.tasks) > inst.n // 3
    check_step(prep.plan("0.6x", **OFFLOAD), t)


def test_parse_budget():
    assert parse_budget("0.6x", 1000) == 600
    assert parse_budget("0.333x", 1000) == 333
    assert parse_budget("1x", 7) == 7 and parse_budget("0.5x", 7) == 4
    assert parse_budget(1234, 10) == 1234 and parse_budget("1234", 10) == 1234
    for bad in ("0x", "-1", "abc", "1.5", None, True, 0):
        with pytest.raises(MemoptError):
            parse_budget(bad, 1000)


def test_wrong_batch_is_an_error():
    t, prep = prepared("gpt2")
    step = prep.plan("1.0x", **FAST)
    with pytest.raises(MemoptError, match="shapes are fixed"):
        step((torch.zeros(3, 32, dtype=torch.long),), t.targets)
    with pytest.raises(MemoptError, match="input"):
        step(t.inputs, ())


def test_storage_tracker_counts_live_storages():
    keep = torch.zeros(10)
    with storage_tracker([keep]) as tr:
        a = torch.empty(100, dtype=torch.uint8)
        v = a.view(10, 10)          # a view: no new storage
        b = torch.empty(50, dtype=torch.uint8)
        del a
        assert tr.current == 150     # v keeps a's storage alive
        del v
        assert tr.current == 50
        keep.add_(1)                 # a storage that existed before: not counted
        del b
    assert tr.peak == 150 and tr.current == 0 and tr.allocations == 2


def _two_output_instance() -> Instance:
    tasks = [Task("a", 1), Task("b", 1), Task("c", 1), Task("d", 1)]
    data = [Datum("a", "a", ("b", "d"), 10), Datum("b.0", "b", ("c",), 5), Datum("b.1", "b", ("d",), 3),
            Datum("c", "c", ("d",), 1)]
    return Instance(tasks, data)


def test_free_before_recompute_keeps_the_price():
    inst = _two_output_instance()
    plan = Plan([[("compute", "a")], [("compute", "b")], [("compute", "c"), ("free", "b.0")],
                 [("compute", "b")], [("compute", "d"), ("free", "a"), ("free", "b.0"), ("free", "b.1"),
                                       ("free", "c")]])
    before = evaluate(inst, plan)
    fixed, kept = free_before_recompute(inst, plan)
    after = evaluate(inst, fixed)
    assert before.valid and after.valid and not kept
    assert ("free", "b.1") in [tuple(e) for e in fixed.stages[3]]
    assert after.peak == before.peak and after.makespan == before.makespan
    assert [p.memory for p in after.memory if p.kind == "compute"] == \
        [p.memory for p in before.memory if p.kind == "compute"]


def test_fuse_inplace_chains_and_write_after_read():
    ops = [Op("x", [], [Tensor("x", 8)], kind="input", recompute=False),
           Op("e", ["x"], [Tensor("e", 8)]),
           Op("w", ["e"], [Tensor("w", 8, alias_of="e")], inplace=True, recompute=False),
           Op("u", ["w"], [Tensor("u", 8)])]
    g, groups = fuse_inplace(NNGraph("g", ops, ["u"]))
    assert groups == {"e": ["e", "w"]} and [op.id for op in g.ops] == ["x", "e", "u"]
    assert g.ops[1].inputs == ["x"] and not g.ops[1].recompute
    bad = ops[:2] + [Op("r", ["e"], [Tensor("r", 8)])] + ops[2:]
    with pytest.raises(MemoptError, match="write after read"):
        fuse_inplace(NNGraph("g", bad, ["u", "r"]))


# ------------------------------------------------------------ the shell
def test_cli_end_to_end(tmp_path, capsys):
    report, plan = tmp_path / "r.json", tmp_path / "p.yaml"
    rc = main(["run", f"{TINY}:gpt2", "--budget", "0.6x", "-m", "planner", "-O", "restarts=0", "-O",
               "score=lookahead", "-t", "20", "--runs", "1", "--report", str(report), "--save-plan", str(plan)])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "peak  predicted" in out and "equal (bit for bit)" in out
    rep = json.loads(report.read_text())
    for key in ("budget", "predicted_peak", "measured_peak", "gradients_equal", "predicted_overhead",
                "measured_overhead"):
        assert key in rep
    assert isinstance(rep["budget"], int) and isinstance(rep["predicted_peak"], int)
    assert rep["measured_peak"] == rep["predicted_peak"] <= rep["budget"]
    assert rep["gradients_equal"] is True and rep["loss_equal"] is True
    assert isinstance(rep["predicted_overhead"], float) and math.isfinite(rep["measured_overhead"])
    assert plan.exists() and "stages" in plan.read_text()


def test_zoo_target_data():
    """models.NAME: the shipped module, a batch of random data of the zoo's shapes, valid labels."""
    t = load_target("models.mobilenetv2", 2)
    assert t.name == "models.mobilenetv2" and t.batch == 2
    (x,), (y,) = t.inputs, t.targets
    assert x.shape == (2, 3, 224, 224) and x.dtype == torch.float32
    assert y.shape == (2,) and y.dtype == torch.long and int(y.min()) >= 0 and int(y.max()) < 1000
    assert load_target("models.mobilenetv2").batch == 1


@pytest.mark.slow
def test_cli_zoo_target(capsys):
    """models.NAME end to end (the smallest shipped architecture, MobileNetV2, at batch 1)."""
    rc = main(["run", "models.mobilenetv2", "--batch", "1", "--budget", "0.7x", "-m", "planner", "-O", "restarts=0",
               "-O", "score=lookahead", "--runs", "1", "-t", "20"])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "equal (bit for bit)" in out


@pytest.mark.parametrize("argv, message", [
    (["models.nope", "--budget", "0.6x"], "unknown architecture"),
    (["nofile.py:f", "--budget", "0.6x"], "no such file"),
    (["models/tiny.py", "--budget", "0.6x"], "expected models.NAME"),
    ([f"{TINY}:nothing", "--budget", "0.6x"], "no function"),
    ([f"{TINY}:gpt2", "--budget", "abc"], "budget"),
    ([f"{TINY}:gpt2", "--budget", "0.6x", "--cost", "guess"], "cost"),
    ([f"{TINY}:gpt2", "--budget", "0.6x", "--report", "r.txt"], ".yaml, .yml or .json"),
    ([f"{TINY}:gpt2", "--budget", "0.01x", "-m", "planner"], "no plan within the budget"),
    ([f"{TINY}:gpt2", "--budget", "0.6x", "--batch", "0"], "batch"),
    ([f"{TINY}:gpt2", "--budget", "0.6x", "-m", "nomethod"], "nomethod"),
])
def test_cli_user_mistakes_exit_2(argv, message, capsys):
    rc = main(["run", *argv])
    err = capsys.readouterr().err
    assert rc == 2
    assert message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_cli_factory_errors(tmp_path, capsys):
    f = tmp_path / "model.py"
    f.write_text("def broken(batch=2):\n    raise ValueError('no data')\n\ndef wrong(batch=2):\n    return 3\n"
                 "def needs(batch):\n    return 3\n")
    for name, message in [("broken", "no data"), ("wrong", "must return"), ("needs", "give --batch")]:
        assert main(["run", f"{f}:{name}", "--budget", "0.6x"]) == 2
        assert message in capsys.readouterr().err


# ------------------------------------------------------------ CUDA
cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


@cuda
def test_cuda_step_equal_and_measured():  # pragma: no cover - no CUDA on the CI machines
    t = load_target(f"{TINY}:resnet18")
    t.module.cuda()
    inputs = tuple(x.cuda() for x in t.inputs)
    targets = tuple(x.cuda() for x in t.targets)
    prep = prepare_step(t.module, inputs, targets, t.loss)
    step = prep.plan("0.5x", **OFFLOAD)
    m = step.measure(inputs, targets)
    assert m.measured_peak == m.predicted_peak <= step.budget
    assert m.cuda_peak is not None and m.cuda_peak >= m.measured_peak
    c = compare(step, t.module, inputs, targets, t.loss)
    assert c.loss_equal and c.gradients_equal
