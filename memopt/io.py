"""Reading and writing instances in any format memopt knows (SPEC §4).

:func:`load_instance` reads our YAML/JSON (:mod:`memopt.core.instance_file`)
and also recognises the formats of the importers (networkx node-link JSON,
WfCommons WfFormat, ONNX...), converting them on the fly.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any

from memopt.core.errors import MemoptError
from memopt.core.files import dump_yaml, read_raw, write_raw
from memopt.core.instance import Instance
from memopt.core.instance_file import instance_from_dict, instance_to_dict

# Importers recognised by content (a JSON/YAML structure) or by extension.
ContentImporter = Callable[[Any, str], Instance]

_CONTENT_IMPORTERS: list[tuple[Callable[[Any], bool], str]] = [
    (lambda raw: isinstance(raw, Mapping) and "nodes" in raw and ("links" in raw or "edges" in raw)
     and "tasks" not in raw,
     "memopt.importers.nodelink:instance_from_nodelink"),
    (lambda raw: isinstance(raw, Mapping) and "workflow" in raw and "tasks" not in raw,
     "memopt.importers.wfcommons:instance_from_wfformat"),
]
_EXTENSION_IMPORTERS: dict[str, str] = {
    ".onnx": "memopt.importers.onnx:load_onnx",
}


def _resolve(spec: str) -> Callable:
    import importlib

    mod, fn = spec.split(":")
    return getattr(importlib.import_module(mod), fn)


def load_instance(path: str | os.PathLike, **options: Any) -> Instance:
    """Read an instance file: our YAML/JSON, or any format an importer knows.

    ``options`` are passed to the importer (e.g. ``batch=`` for ONNX).
    """
    path = os.fspath(path)
    ext = os.path.splitext(path)[1].lower()
    if ext in _EXTENSION_IMPORTERS:
        if not os.path.exists(path):
            raise MemoptError(f"{path}: no such file")
        return _resolve(_EXTENSION_IMPORTERS[ext])(path, **options)
    raw = read_raw(path)
    for pred, spec in _CONTENT_IMPORTERS:
        if pred(raw):
            return _resolve(spec)(raw, path, **options)
    if options:
        raise MemoptError(f"{path}: options {sorted(options)} only apply to imported formats")
    return instance_from_dict(raw, where=path)


def save_instance(inst: Instance, path: str | os.PathLike) -> None:
    """Write an instance as YAML or JSON (by extension)."""
    write_raw(instance_to_dict(inst), path)


__all__ = [
    "read_raw", "write_raw", "dump_yaml", "instance_from_dict", "instance_to_dict",
    "load_instance", "save_instance",
]
