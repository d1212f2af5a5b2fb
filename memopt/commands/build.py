"""``memopt build``: trace the shipped architectures (``models/``) into instances.

Each model of the zoo (``models/__init__.py``: ``ZOO``) is traced with the
PyTorch importer (:mod:`memopt.importers.pytorch`, on the meta device) into
an inference instance and a training instance at each of its batch sizes,
written as ``<out>/<model>-<infer|train>-b<batch>.yaml``. The shipped files
under ``instances/nn/`` are this command's output, so solving them needs
neither torch nor onnx. ``--optimizer adam`` adds the optimizer step to the
training graphs (parameters, gradients and optimizer states as data:
``<model>-train-adam-b<batch>``); the zoo's large models (GPT-2 medium, the
Llama-style decoders) are built only when named with ``--only``.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import time
from pathlib import Path
from typing import Any

from memopt.core.errors import MemoptError

DEFAULT_OUT = os.path.join("instances", "nn")
#: machine.bandwidth of the built instances: a PCIe 4.0 x16 link, in bytes per second
DEFAULT_LINK = 16e9


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "build", help="trace the shipped architectures (models/) into instances (needs torch)",
        description="Trace every model of models/ (ResNet-18/50, VGG-16, U-Net, MobileNetV2, GPT-2, ViT; "
                    "GPT-2 medium and the Llama-style decoders with --only) on PyTorch's meta device into an "
                    "inference and a training instance per batch size, written as "
                    "OUT/<model>-<infer|train>-b<batch>.yaml. Needs the torch extra. See docs/importers-nn.md.")
    p.add_argument("--models-dir", default=None, metavar="DIR",
                   help="the models package (default: the one beside the memopt package, else ./models)")
    p.add_argument("--out", default=DEFAULT_OUT, metavar="DIR", help=f"output folder (default {DEFAULT_OUT})")
    p.add_argument("--only", action="append", metavar="MODEL", help="build only this model (repeatable)")
    p.add_argument("--batch", action="append", type=int, metavar="N",
                   help="batch size (repeatable; default: each model's own list)")
    p.add_argument("--mode", choices=("infer", "train", "both"), default="both",
                   help="which graphs to build (default both)")
    p.add_argument("--bandwidth", type=float, default=DEFAULT_LINK, metavar="BYTES_PER_S",
                   help=f"machine.bandwidth of the instances, in bytes per second (default {DEFAULT_LINK:g})")
    p.add_argument("--keep-views", action="store_true",
                   help="keep view/alias operations as tasks of time 0 (default: contract them; no peak changes)")
    p.add_argument("--optimizer", choices=("none", "sgd", "sgd-momentum", "adam"), default="none",
                   help="training graphs end with this optimizer's update of every parameter; parameters, "
                        "gradients and optimizer states are then data (default none: gradients are the outputs)")
    p.add_argument("--optimizer-on-host", action="store_true",
                   help="with --optimizer: the optimizer states live on the host and the update runs there "
                        "(ZeRO-Offload-like approximation, docs/importers-nn.md)")
    p.add_argument("--list", action="store_true", help="list the models and their batch sizes, build nothing")
    p.set_defaults(func=run)


def find_models_dir(given: str | None = None) -> Path:
    """The folder of the models package: ``given``, the repository's ``models/`` (beside the
    ``memopt`` package of a source checkout), or ``./models``."""
    cands = [Path(given)] if given else [Path(__file__).resolve().parents[2] / "models", Path("models")]
    for c in cands:
        if (c / "__init__.py").is_file():
            return c
    where = given or "beside the memopt package or in ./models"
    raise MemoptError(f"no models package found at {where}: give --models-dir DIR (a folder with __init__.py "
                      f"defining ZOO)")


def load_zoo(models_dir: str | os.PathLike | None = None) -> Any:
    """Import the models package from its folder (as ``memopt_zoo``) and return it."""
    try:
        import torch  # noqa: F401
    except ImportError:
        raise MemoptError("memopt build needs torch: pip install 'memopt[torch]' (torch==2.13.0)") from None
    d = find_models_dir(None if models_dir is None else os.fspath(models_dir))
    name = "memopt_zoo"
    if name in sys.modules and Path(getattr(sys.modules[name], "__file__", "")).parent.resolve() == d.resolve():
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, d / "__init__.py", submodule_search_locations=[str(d)])
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    if not isinstance(getattr(mod, "ZOO", None), dict):
        raise MemoptError(f"{d}/__init__.py defines no ZOO dictionary of models")
    return mod


def build_instance(spec: Any, mode: str, batch: int, *, bandwidth: float | None = DEFAULT_LINK,
                   keep_views: bool = False, optimizer: str | None = None, optimizer_on_host: bool = False):
    """The instance of one zoo model (``mode`` infer or train) at ``batch``.

    Alias operations are contracted unless ``keep_views`` (their readers read
    the storage root directly): no schedule's peak changes, and a
    transformer's training graph loses about half of its tasks. ``optimizer``
    (training only): the step ends with the optimizer update
    (:func:`memopt.importers.pytorch.trace_training`); the name then says which:
    ``<model>-train-<optimizer>[-host]-b<batch>``; with ``keep_views``, ``-views`` before ``-b<batch>``.
    """
    import torch

    from memopt.importers.pytorch import import_module

    optimizer = None if optimizer in (None, "none") or mode != "train" else optimizer
    with torch.device("meta"):
        module = spec.build()
    tag = f"-{optimizer}{'-host' if optimizer_on_host else ''}" if optimizer else ""
    tag += "-views" if keep_views else ""
    name = f"{spec.name}-{mode}{tag}-b{batch}"
    inst = import_module(module, spec.inputs(batch), train=(mode == "train"), loss=spec.loss,
                         targets=spec.targets(batch), bandwidth=bandwidth, keep_views=keep_views, name=name,
                         optimizer=optimizer, optimizer_on_host=optimizer_on_host and bool(optimizer))
    meta = dict(inst.meta or {})
    meta.update({"model": spec.name, "description": spec.description, "batch": batch})
    return inst.replace(meta=meta)


INDEX_HEAD = """# Neural-network instances

Built by `memopt build` (this file too) from the architectures of `models/`,
traced with the PyTorch importer on the meta device: `<model>-infer-b<N>` is
the inference graph (torch.fx, eval mode), `<model>-train-b<N>` the joint
training graph of one step (forward, loss, gradients of every parameter;
make_fx) at batch size N. Sizes in bytes, times in ns (the roofline cost model
of [docs/importers-nn.md](../../docs/importers-nn.md)); parameters excluded
(their total is `meta.parameter_bytes`); view operations contracted (no peak
changes); `machine.bandwidth` 16 bytes/ns (PCIe 4.0 x16) for offloading.
Solving them needs neither torch nor onnx. The tasks are listed in the order
PyTorch runs them: *traced peak* is the peak of that order.
`results/nn_models.md` compares it with memopt's order.

| instance | tasks | data | traced peak (MiB) | parameters (MiB) | description |
|---|---:|---:|---:|---:|---|
"""


def write_index(out: str) -> str:
    """Write ``out/README.md``: one row per instance built there (read back from the files)."""
    import glob

    from memopt.core.evaluate import schedule_peak
    from memopt.io import load_instance

    rows = []
    for p in sorted(glob.glob(os.path.join(out, "*.yaml"))):
        inst = load_instance(p)
        meta = inst.meta or {}
        if meta.get("source") != "pytorch" or "model" not in meta:
            continue
        peak = schedule_peak(inst, inst.topological_order)
        rows.append((meta["model"], meta.get("graph", ""), meta.get("batch", 0),
                     (f"| `{os.path.basename(p)}` | {inst.n} | {inst.m} | {peak / 2 ** 20:,.1f} | "
                      f"{meta.get('parameter_bytes', 0) / 2 ** 20:,.1f} | {meta.get('description', '')} |")))
    rows.sort(key=lambda r: (r[0], r[1], r[2]))
    path = os.path.join(out, "README.md")
    with open(path, "w") as f:
        f.write(INDEX_HEAD + "\n".join(r[3] for r in rows) + "\n")
    return path


def run(args: argparse.Namespace) -> int:
    from memopt.core.evaluate import schedule_peak
    from memopt.io import save_instance

    zoo = load_zoo(args.models_dir).ZOO
    if args.list:
        for name, spec in zoo.items():
            note = "" if getattr(spec, "shipped", True) else "  (built with --only)"
            print(f"{name:<12}  batches {','.join(map(str, spec.batches)):<8}  {spec.description}{note}")
        return 0
    names = args.only or [n for n, spec in zoo.items() if getattr(spec, "shipped", True)]
    unknown = [n for n in names if n not in zoo]
    if unknown:
        raise MemoptError(f"unknown model(s) {', '.join(unknown)}; known: {', '.join(zoo)}")
    modes = ("infer", "train") if args.mode == "both" else (args.mode,)
    if args.batch and any(b < 1 for b in args.batch):
        raise MemoptError("--batch must be a positive integer")
    print(f"{'instance':<24} {'tasks':>6} {'data':>6} {'traced peak (B)':>16} {'seconds':>8}  file")
    for name in names:
        spec = zoo[name]
        for batch in args.batch or spec.batches:
            for mode in modes:
                t0 = time.perf_counter()
                inst = build_instance(spec, mode, batch, bandwidth=args.bandwidth, keep_views=args.keep_views,
                                      optimizer=args.optimizer, optimizer_on_host=args.optimizer_on_host)
                path = os.path.join(args.out, f"{inst.name}.yaml")
                save_instance(inst, path)
                dt = time.perf_counter() - t0
                peak = schedule_peak(inst, inst.topological_order)
                print(f"{inst.name:<24} {inst.n:>6} {inst.m:>6} {peak:>16} {dt:>8.2f}  {path}", flush=True)
    print(f"index: {write_index(args.out)}")
    return 0
