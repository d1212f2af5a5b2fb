"""ONNX importer: any ONNX model whose shapes can be inferred becomes an instance.

Needs the ``onnx`` extra (``pip install 'memopt[onnx]'``). ``load_instance``
reads ``.onnx`` files through :func:`load_onnx`; ``memopt convert
MODEL.onnx OUT.yaml [-I train=true] [-I batch=8]`` writes the instance.

Reading a model (:func:`onnx_graph`):

1. Symbolic dimensions of the graph inputs are fixed: the first one (the
   batch) to 1, the others from ``dims`` (``{"seq": 128}``), and ONNX shape
   inference (with data propagation) gives every tensor its shape.
2. **Constants** — initializers, ``Constant`` nodes, and every node all of
   whose inputs are constants (e.g. ``ConstantOfShape`` of an initializer, as
   in the ``light`` models the onnx package ships) — are folded: they are the
   model's parameters, not tasks.
3. Every other node is an op, named after its first output. Its outputs are
   tensors of ``bytes(dtype) × Π shape``; activations scale with the batch:
   ``batch`` N multiplies them by N / B0, where B0 is the model's own batch
   (the first dimension of its first input; 1 when symbolic).
4. ``Reshape``, ``Flatten``, ``Squeeze``, ``Unsqueeze``, ``Identity`` and
   ``Dropout`` (inference: the identity) alias their first input, as ONNX
   Runtime runs them: they take no new memory. ``Transpose`` copies (ONNX has
   no strided views).
5. FLOPs: ``Conv``, ``ConvTranspose``, ``MatMul``, ``Gemm`` (2 per
   multiply-add); every op also moves the bytes it reads and writes
   (``Shape`` and ``Size`` read no data). Time is the roofline of
   :class:`~memopt.importers.nn.CostModel`.

The graph becomes an instance by :func:`~memopt.importers.nn.to_instance`
(rules and the cost model in ``docs/importers-nn.md``). With ``train=True``
the forward graph (aliases contracted) is differentiated by
:func:`memopt.training.training_graph`, each op's parameter bytes being the
parameters it is the first to read.

Control-flow nodes (``If``, ``Loop``, ``Scan``) are one task each: their
subgraphs' own intermediates are not modelled. Sequences own copies of their
tensors (:func:`_sequence_value`).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from fractions import Fraction
from typing import Any

from memopt.core.errors import MemoptError, SolverUnavailableError
from memopt.core.instance import Instance
from memopt.importers.nn import NNGraph, Op, Tensor, keep_to_end, make_cost, to_instance

ALIAS_OPS = frozenset({"Reshape", "Flatten", "Squeeze", "Unsqueeze", "Identity", "Dropout"})
RANDOM_OPS = frozenset({"RandomNormal", "RandomNormalLike", "RandomUniform", "RandomUniformLike",
                        "Bernoulli", "Multinomial"})
METADATA_OPS = frozenset({"Shape", "Size"})  # read only the input's shape


def module_path(node_name: str) -> str | None:
    """The module path in an exported node's name: ``/blocks.3/attn/MatMul`` → ``blocks.3.attn`` (the
    task's group); ``None`` for a name without one."""
    parts = [p for p in node_name.split("/") if p]
    if not node_name.startswith("/") or len(parts) < 2:
        return None
    return ".".join(parts[:-1])


def _onnx():
    try:
        import onnx
    except ImportError:  # pragma: no cover - depends on the environment
        raise SolverUnavailableError("reading .onnx files needs the onnx package: pip install 'memopt[onnx]'") from None
    return onnx


def load_onnx(path: str | os.PathLike, **options: Any) -> Instance:
    """The instance of the ONNX model at ``path`` (the ``.onnx`` importer of ``load_instance``).

    ``options`` are those of :func:`onnx_instance`; an unknown one is a
    :class:`~memopt.core.errors.MemoptError` naming the known ones.
    """
    import inspect

    known = [p for p in inspect.signature(onnx_instance).parameters if p != "path"]
    bad = sorted(set(options) - set(known))
    if bad:
        raise MemoptError(f"{os.fspath(path)}: unknown ONNX importer option(s) {', '.join(bad)} "
                          f"(known: {', '.join(known)})")
    return onnx_instance(path, **options)


def onnx_instance(
    path: str | os.PathLike,
    *,
    train: bool = False,
    batch: int | None = None,
    dims: Mapping[str, int] | str | None = None,
    count_params: bool = False,
    flops_per_second: float | None = None,
    bytes_per_second: float | None = None,
    keep_views: bool = True,
    size_unit: str = "B",
    bandwidth: float | None = None,
    grad_time_factor: float = 2.0,
    optimizer: str | None = None,
    optimizer_on_host: bool = False,
    op_meta: bool = True,
    name: str | None = None,
) -> Instance:
    """The instance of the ONNX model at ``path``.

    Parameters
    ----------
    train:
        Build the training graph (forward + loss + backward) with
        :func:`memopt.training.training_graph`.
    batch:
        Batch size (default: the model's own).
    dims:
        Values of symbolic input dimensions other than the batch, as a mapping
        or a string ``"seq=128,heads=8"``.
    count_params:
        Count the parameters as one datum alive from start to end.
    flops_per_second, bytes_per_second:
        The cost model's throughputs (defaults: 10 TFLOP/s, 500 GB/s).
    keep_views:
        Keep alias ops as tasks of time 0 (``False``: contract them).
    size_unit:
        ``B`` (default), ``KiB``, ``MiB`` or ``GiB``.
    bandwidth:
        Bytes per second between fast and slow memory (sets ``machine.bandwidth``).
    grad_time_factor:
        With ``train``: a backward task takes this times its forward task.
    optimizer, optimizer_on_host:
        With ``train``: end the step with this optimizer's update of each
        operation's parameters (``sgd``, ``sgd-momentum``, ``adam``;
        :func:`memopt.importers.optimizer.add_optimizer`); on the host: the
        states live there, ZeRO-Offload-like (needs ``bandwidth``).
    """
    path = os.fspath(path)
    where = path
    train = _flag(train, "train", where)
    count_params = _flag(count_params, "count_params", where)
    keep_views = _flag(keep_views, "keep_views", where)
    from memopt.importers.optimizer import get_optimizer

    opt = get_optimizer(optimizer, where)
    if opt is not None and not train:
        raise MemoptError(f"{where}: option optimizer={optimizer!r} needs train=true")
    optimizer_on_host = _flag(optimizer_on_host, "optimizer_on_host", where)
    g = onnx_graph(path, batch=batch, dims=dims, name=name)
    cost = make_cost(_positive(flops_per_second, "flops_per_second", where),
                     _positive(bytes_per_second, "bytes_per_second", where))
    bw = _positive(bandwidth, "bandwidth", where)
    common = dict(cost=cost, size_unit=size_unit, bandwidth=None if bw is None else bw / 1e9,
                  op_meta=op_meta, where=where)
    if not train:
        return to_instance(g, count_params=count_params, keep_views=keep_views, name=name or g.name, **common)
    from memopt.training import training_graph

    fwd = to_instance(g, count_params=count_params and opt is None, keep_views=False, sink=False,
                      name=name or g.name, **common)
    # each parameter belongs to the first op that reads it (tied weights are counted once)
    owner: dict[str, str] = {}
    for op in g.ops:
        for x in op.inputs:
            if x in g.params and x not in owner:
                owner[x] = op.id
    pbytes: dict[str, int] = {}
    unit = {"B": 1, "KiB": 1024, "MiB": 1024 ** 2, "GiB": 1024 ** 3}[size_unit]
    for x, op_id in owner.items():
        if op_id in fwd.task_index:
            pbytes[op_id] = pbytes.get(op_id, 0) + g.params[x]
    params = {k: -(-v // unit) for k, v in pbytes.items() if v > 0}
    inst = training_graph(fwd, params=params, grad_time_factor=grad_time_factor,
                          name=(name or g.name) + "-train")
    meta = dict(inst.meta or {})
    meta["graph"] = "training"
    inst = inst.replace(meta=meta)
    if opt is not None:
        from memopt.importers.optimizer import ParamGroup, add_optimizer

        groups = [ParamGroup(f, size, (f, f"{f}.bwd"), f"grad:{f}.params") for f, size in params.items()]
        return add_optimizer(inst, groups, opt, cost=cost, on_host=optimizer_on_host,
                             bandwidth=None if bw is None else bw / 1e9, unit=unit)
    if count_params:
        inst = keep_to_end(inst, ["parameters"])
    return inst


def _flag(value: Any, what: str, where: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false", "yes", "no", "1", "0"):
        return value.lower() in ("true", "yes", "1")
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    raise MemoptError(f"{where}: option {what} must be true or false, got {value!r}")


def _positive(value: Any, what: str, where: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (value > 0) or math.isinf(value):
        raise MemoptError(f"{where}: option {what} must be a positive number, got {value!r}")
    return float(value)


def parse_dims(dims: Mapping[str, int] | str | None, where: str = "<onnx>") -> dict[str, int]:
    """``{"seq": 128}`` from a mapping or from the string ``"seq=128,heads=8"``."""
    if dims is None:
        return {}
    if isinstance(dims, str):
        out: dict[str, int] = {}
        for part in dims.replace(";", ",").split(","):
            part = part.strip()
            if not part:
                continue
            if "=" not in part:
                raise MemoptError(f"{where}: dims {dims!r}: expected name=value pairs like seq=128,heads=8")
            k, v = part.split("=", 1)
            try:
                out[k.strip()] = int(v)
            except ValueError:
                raise MemoptError(f"{where}: dims {dims!r}: {v!r} is not an integer") from None
        dims = out
    res = {}
    for k, v in dict(dims).items():
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise MemoptError(f"{where}: dimension {k!r} must be a positive integer, got {v!r}")
        res[str(k)] = v
    return res


def onnx_graph(
    model: Any,
    *,
    batch: int | None = None,
    dims: Mapping[str, int] | str | None = None,
    name: str | None = None,
) -> NNGraph:
    """The :class:`NNGraph` of an ONNX model (a path or a ``ModelProto``); steps in the module docstring."""
    onnx = _onnx()
    where = model if isinstance(model, str) else "<onnx model>"
    if isinstance(model, (str, os.PathLike)):
        where = os.fspath(model)
        try:
            # weights kept in external files are not needed (only their shapes): not read
            model = onnx.load(where, load_external_data=False)
        except Exception as e:  # noqa: BLE001 - protobuf's DecodeError and friends: a clear input error
            raise MemoptError(f"{where}: not a readable ONNX model ({type(e).__name__}: {e})") from None
    if batch is not None and (isinstance(batch, bool) or not isinstance(batch, int) or batch < 1):
        raise MemoptError(f"{where}: batch must be a positive integer, got {batch!r}")
    dimvals = parse_dims(dims, where)
    init_names = {t.name for t in model.graph.initializer}

    # 1. fix the symbolic input dimensions, then infer every shape
    model = _copy_model(onnx, model)
    graph = model.graph
    real_inputs = [i for i in graph.input if i.name not in init_names]
    missing: dict[str, str] = {}
    for vi in real_inputs:
        if not vi.type.HasField("tensor_type"):
            raise MemoptError(f"{where}: input {vi.name!r} is not a tensor (sequences and maps are not supported)")
        for a, d in enumerate(vi.type.tensor_type.shape.dim):
            if d.HasField("dim_value"):
                continue
            sym = d.dim_param
            if sym and sym in dimvals:
                d.dim_value = dimvals[sym]
            elif a == 0:
                d.dim_value = 1  # the batch: sizes are scaled below
            else:
                missing.setdefault(sym or f"{vi.name}[{a}]", vi.name)
    if missing:
        lst = ", ".join(f"{s!r} (input {i!r})" for s, i in missing.items())
        raise MemoptError(f"{where}: symbolic input dimension(s) {lst} need a value: pass dims, "
                          f"e.g. -I dims={next(iter(missing))}=128")
    try:
        model = onnx.shape_inference.infer_shapes(model, check_type=False, strict_mode=False, data_prop=True)
    except Exception as e:  # noqa: BLE001 - the C++ shape inference raises many types: a clear input error
        raise MemoptError(f"{where}: ONNX shape inference failed ({type(e).__name__}: {e})") from None
    graph = model.graph

    types: dict[str, tuple[int, list[Any]]] = {}
    for vi in list(graph.input) + list(graph.value_info) + list(graph.output):
        if vi.type.HasField("tensor_type"):
            tt = vi.type.tensor_type
            shape = [d.dim_value if d.HasField("dim_value") else (d.dim_param or None) for d in tt.shape.dim] \
                if tt.HasField("shape") else None
            types[vi.name] = (tt.elem_type, shape)
    for t in graph.initializer:
        types[t.name] = (t.data_type, list(t.dims))

    def shape_of(x: str, what: str) -> tuple[int, list[int]]:
        if x not in types or types[x][1] is None:
            raise MemoptError(f"{where}: tensor {x!r} ({what}): its shape is unknown after ONNX shape inference")
        et, shape = types[x]
        bad = [d for d in shape if not isinstance(d, int)]
        if bad:
            raise MemoptError(f"{where}: tensor {x!r} ({what}): dimension {bad[0]!r} is unknown after shape "
                              f"inference (a data-dependent shape?); give symbolic ones with dims")
        return et, shape

    def nbytes(x: str, what: str) -> int:
        et, shape = shape_of(x, what)
        return _itemsize(onnx, et, x, where) * math.prod(shape)

    # the model's own batch and the scale of activations
    b0 = 1
    if real_inputs:
        shp = types.get(real_inputs[0].name, (0, None))[1]
        if shp and isinstance(shp[0], int) and shp[0] > 0:
            b0 = shp[0]
    scale = Fraction(batch if batch is not None else b0, b0)

    def act(n: int) -> int:
        return math.ceil(n * scale)

    # 2. constants: initializers, Constant nodes, nodes of constants only (not random ones)
    const = set(init_names)
    for node in graph.node:
        ins = [x for x in node.input if x]
        if node.op_type in RANDOM_OPS:
            continue
        if node.op_type == "Constant" or (ins and all(x in const for x in ins)) or (
                not ins and node.op_type in ("ConstantOfShape", "Constant")):
            const.update(x for x in node.output if x)

    # 3. ops; an output nobody reads whose shape is unknown (the mask of an
    # opset-9 Dropout) is written and dropped at once: counted as 0 and listed in meta
    read = {x for node in graph.node for x in node.input if x} | {o.name for o in graph.output}
    seq_typed = {vi.name for vi in list(graph.value_info) + list(graph.output) if vi.type.HasField("sequence_type")}
    unsized: list[str] = []
    ops: list[Op] = []
    params: dict[str, int] = {}
    size0: dict[str, int] = {}  # bytes of each activation at the model's own batch
    seq: dict[str, tuple[int, int]] = {}  # a sequence: (bytes of all its tensors, of its largest)
    for vi in real_inputs:
        size0[vi.name] = nbytes(vi.name, "graph input")
        ops.append(Op(vi.name, [], [Tensor(vi.name, act(size0[vi.name]))], op="input", kind="input",
                      recompute=False))
    taken_ids = {vi.name for vi in real_inputs}

    def out_bytes(node, x: str, ins: list[str], label: str) -> int | None:
        """Bytes of output x at the model's batch; None when unknown and nobody reads it."""
        if node.op_type in SEQUENCE_OPS or x in seq_typed:
            seq[x] = _sequence_value(node, ins, size0, seq, where, label)
            return seq[x][0]
        if x in types and types[x][1] is not None and all(isinstance(d, int) for d in types[x][1]):
            return nbytes(x, label)
        if node.op_type == "SequenceAt" and ins and ins[0] in seq:
            return seq[ins[0]][1]  # at most the largest element
        if node.op_type == "ConcatFromSequence" and ins and ins[0] in seq:
            return seq[ins[0]][0]
        if x not in read:
            return None
        return nbytes(x, label)  # raises the clear error

    for k, node in enumerate(graph.node):
        outs = [x for x in node.output if x]
        if not outs or all(x in const for x in outs):
            continue
        label = f"output of node {node.name or k} ({node.op_type})"
        ins = [x for x in node.input if x]
        for x in ins:
            if x in const and x not in params:
                params[x] = nbytes(x, "a parameter") if x in types else 0
        tensors = []
        for i, x in enumerate(outs):
            alias = ins[0] if (node.op_type in ALIAS_OPS and i == 0 and ins and ins[0] not in const) else None
            b = out_bytes(node, x, ins, label)
            if b is None:
                unsized.append(x)
                b = 0
            size0[x] = b
            tensors.append(Tensor(x, act(b), alias_of=alias))
        flops = _flops(node, shape_of, label)
        moved = None
        if node.op_type in METADATA_OPS:
            moved = sum(t.nbytes for t in tensors)
        else:
            moved = sum((params[x] if x in const else act(size0.get(x, 0))) for x in ins) \
                + sum(t.owned for t in tensors)
        op_id = outs[0]
        if op_id in taken_ids:
            raise MemoptError(f"{where}: tensor {op_id!r} is written twice ({label})")
        taken_ids.add(op_id)
        ops.append(Op(op_id, ins, tensors, op=node.op_type, flops=math.ceil(flops * scale), moved=moved,
                      recompute=node.op_type not in RANDOM_OPS, group=module_path(node.name)))
    outputs = [o.name for o in graph.output]
    base = name or os.path.splitext(os.path.basename(where))[0] or (graph.name or "onnx")
    meta = {"source": "onnx", "graph": "inference", "model": os.path.basename(where),
            "batch": batch if batch is not None else b0,
            "opset": max((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), default=None)}
    if unsized:
        meta["unsized_unread_outputs"] = unsized
    return NNGraph(base, ops, outputs, params, meta)


SEQUENCE_OPS = frozenset({"SequenceEmpty", "SequenceConstruct", "SequenceInsert", "SequenceErase",
                          "SplitToSequence"})


def _sequence_value(node, ins: list[str], size0: Mapping[str, int], seq: Mapping[str, tuple[int, int]],
                    where: str, label: str) -> tuple[int, int]:
    """(bytes of all tensors, bytes of the largest) of a sequence an op writes.

    A sequence owns copies of its tensors (as ONNX Runtime's sequence ops
    copy them): ``SequenceConstruct`` holds its inputs, ``SequenceInsert``
    its input sequence plus the tensor, ``SplitToSequence`` the pieces of its
    input. ``SequenceErase`` is counted as not shrinking the sequence (an
    upper bound: which tensor it drops is known only at run time).
    """
    op = node.op_type
    try:
        if op == "SequenceEmpty":
            return (0, 0)
        if op == "SequenceConstruct":
            sizes = [size0[x] for x in ins]
            return (sum(sizes), max(sizes, default=0))
        if op == "SequenceInsert":
            total, big = seq[ins[0]]
            t = size0[ins[1]]
            return (total + t, max(big, t))
        if op == "SequenceErase":
            return seq[ins[0]]
        if op == "SplitToSequence":
            return (size0[ins[0]], size0[ins[0]])
    except (KeyError, IndexError):
        pass
    raise MemoptError(f"{where}: sequence {label}: cannot size it (supported: {', '.join(sorted(SEQUENCE_OPS))} "
                      f"of tensors of known shape)")


def _copy_model(onnx, model):
    m = onnx.ModelProto()
    m.CopyFrom(model)
    return m


def _itemsize(onnx, elem_type: int, x: str, where: str) -> int:
    try:
        return int(onnx.helper.tensor_dtype_to_np_dtype(elem_type).itemsize)
    except KeyError:  # the element type is not in onnx's TENSOR_TYPE_MAP
        raise MemoptError(f"{where}: tensor {x!r}: element type {elem_type} has no known size") from None


def _flops(node, shape_of, label: str) -> int:
    """Floating-point operations of the compute-bound ops (2 per multiply-add); 0 for the others."""
    op = node.op_type
    ins = list(node.input)
    out = node.output[0] if node.output else ""
    try:
        if op == "Conv" and len(ins) >= 2:
            _, w = shape_of(ins[1], "a Conv weight")
            _, y = shape_of(out, label)
            return 2 * math.prod(y) * math.prod(w[1:])
        if op == "ConvTranspose" and len(ins) >= 2:
            _, x = shape_of(ins[0], "a ConvTranspose input")
            _, w = shape_of(ins[1], "a ConvTranspose weight")
            return 2 * math.prod(x) * math.prod(w[1:])
        if op in ("MatMul", "MatMulInteger"):
            _, a = shape_of(ins[0], "a MatMul input")
            _, y = shape_of(out, label)
            return 2 * math.prod(y) * (a[-1] if a else 1)
        if op == "Gemm":
            _, a = shape_of(ins[0], "a Gemm input")
            _, y = shape_of(out, label)
            trans_a = next((at.i for at in node.attribute if at.name == "transA"), 0)
            k = a[0] if trans_a else a[-1]
            return 2 * math.prod(y) * k
    except MemoptError:
        return 0  # no shape for a weight: count the bytes moved only
    return 0


__all__ = ["load_onnx", "onnx_instance", "onnx_graph", "parse_dims", "ALIAS_OPS", "RANDOM_OPS"]
