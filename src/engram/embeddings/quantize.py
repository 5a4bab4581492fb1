"""int8 variant of the local model's ONNX graph: faster single queries, vectors within 0.99 cosine of fp32.

Dynamic quantization (int8 weights per output channel, activations scaled
per call) of the matrix products that measured least sensitive, one at a
time, over LoCoMo turns and questions (1 - min cosine to fp32 when only
that product is int8): attention's QKV (<= 0.0008) and output projection
(<= 0.00004) in every layer and the FFN down-projection in the last third
of the layers (<= 0.0002; 0.0006-0.0045 before). The FFN up-projections
(~0.0013 each) stay fp32. Together: 1.3x less CPU per query than fp32,
1 - min cosine 0.003; every product in int8 was 2.2x but 0.015-0.02, and
adding FFN down of layer 3 and FFN up of layer 5 (1.45x) moved LoCoMo
vector-only any@10 by 0.0053 (bench/README.md).

Activations are scaled per call, so a text's vector would depend on its
batch mates; the int8 model therefore runs each text in its own call.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

RECIPE = "q2"  # in the file name: a change of recipe makes a new file (and needs a new model name)
_LAYER = re.compile(r"layer\.(\d+)/")


def quantized_nodes(nodes: list[Any], layers: int) -> list[str]:
    """Names of the matrix products to quantize (the fused graph's or the plain export's)."""
    chosen = []
    for node in nodes:
        if node.op_type == "Attention":  # fused QKV: named Attention_<layer>
            chosen.append(node.name)
            continue
        if node.op_type != "MatMul" or not (m := _LAYER.search(node.name)):
            continue
        layer = int(m.group(1))
        if "/attention/" in node.name and ("/self/" in node.name or "/output/" in node.name):
            chosen.append(node.name)  # Q, K, V (unfused) and the attention output projection
        elif "/output/dense/" in node.name and layer >= layers - layers // 3:
            chosen.append(node.name)  # FFN down-projection, last third
    return chosen


def quantize_onnx(source: Path, target: Path, layers: int) -> Path:
    """The int8 graph of ``source`` at ``target`` (atomic; deterministic for one onnxruntime version)."""
    import logging

    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    nodes = list(onnx.load(str(source)).graph.node)
    chosen = set(quantized_nodes(nodes, layers))
    if not chosen:
        raise ValueError(f"{source.name}: no matrix product to quantize (not a BERT export?)")
    tmp = target.with_name(f"{target.name}.{os.getpid()}.partial")
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # quantize_dynamic warns through the root logger about pre-processing
    try:
        quantize_dynamic(
            str(source),
            str(tmp),
            weight_type=QuantType.QInt8,
            per_channel=True,
            op_types_to_quantize=["MatMul", "Attention"],
            nodes_to_exclude=[n.name for n in nodes if n.name not in chosen],
            extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
        )
        tmp.replace(target)
    finally:
        root.setLevel(level)
        tmp.unlink(missing_ok=True)
    return target
