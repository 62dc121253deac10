"""Write an ONNX graph with its weights in an aligned side file, so onnxruntime maps them.

A graph saved in one protobuf file is parsed and its weights copied into
onnxruntime's buffers on every load: for a ViT-B/32 text tower that is about
0.4 s of CPU and twice its size in memory before the first query. When each
large weight lies in ``<graph>.data`` at an offset that is a multiple of the
allocation granularity, onnxruntime memory-maps it instead (CPU provider), so
a cold load reads only the small graph file and the pages a query touches.

:func:`save_aligned` rewrites a loaded :class:`onnx.ModelProto` that way: every
initializer of at least :data:`THRESHOLD` bytes goes to the side file at a
:data:`ALIGN`-byte boundary (64 KiB: Windows' granularity, a multiple of every
page size); smaller ones stay inline. Graphs of any size can be written, also
those beyond protobuf's 2 GB limit.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mmsearch._lazy import require

ALIGN = 65536
THRESHOLD = 65536
_TYPED_FIELDS = ("float_data", "int32_data", "int64_data", "double_data", "uint64_data")


def data_file(graph: Path) -> Path:
    """The side file holding ``graph``'s weights."""
    return graph.with_name(f"{graph.name}.data")


def save_aligned(model: Any, dst: Path) -> Path:
    """Save ``model`` (all weights in memory) to ``dst`` + ``<dst>.data``; return the side file."""
    onnx = require("onnx")
    from onnx.external_data_helper import set_external_data

    side = data_file(dst)
    with open(side, "wb") as out:
        for tensor in _initializers(model.graph):
            raw = _raw_bytes(onnx, tensor)
            if raw is None or len(raw) < THRESHOLD:
                continue
            offset = out.tell()
            pad = -offset % ALIGN
            out.write(b"\0" * pad)
            out.write(raw)
            for typed in _TYPED_FIELDS:  # the inline copy may be in any one of these
                tensor.ClearField(typed)
            tensor.raw_data = raw
            set_external_data(tensor, side.name, offset=offset + pad, length=len(raw))
            tensor.data_location = onnx.TensorProto.EXTERNAL
            tensor.ClearField("raw_data")
    onnx.save_model(model, str(dst))
    return side


def _initializers(graph: Any) -> list[Any]:
    """Initializers of ``graph`` and of the subgraphs inside its nodes (If, Loop, Scan)."""
    out = list(graph.initializer)
    for node in graph.node:
        for attr in node.attribute:
            subgraphs = list(attr.graphs) + ([attr.g] if attr.HasField("g") else [])
            for sub in subgraphs:
                out += _initializers(sub)
    return out


def _raw_bytes(onnx: Any, tensor: Any) -> bytes | None:
    """The tensor's data as little-endian bytes, or None for types kept inline (strings)."""
    if tensor.data_location == onnx.TensorProto.EXTERNAL:
        raise ValueError(f"weights of {tensor.name!r} are not loaded; load the model with them")
    if tensor.data_type == onnx.TensorProto.STRING:
        return None
    if tensor.HasField("raw_data"):
        return bytes(tensor.raw_data)
    from onnx import numpy_helper

    arr = numpy_helper.to_array(tensor)
    data: bytes = arr.astype(arr.dtype.newbyteorder("<"), copy=False).tobytes()
    return data
