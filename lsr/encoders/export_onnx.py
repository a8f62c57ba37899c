"""ONNX export of the D2S query module (`lsr.encoders.export`), for ML Commons' ONNX engine.

The graph's inputs are named exactly as the sparse-encoding translator feeds them (``input1.input_ids``,
``input1.attention_mask``; int64, dynamic batch and length) and its one output is the ``[batch, vocab]``
weight tensor. Needs the ``onnx`` extra (``pip install 'mm-lsr-opensearch[onnx]'``: onnx, onnxruntime).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from lsr.errors import MissingFileError

INPUT_NAMES = ["input1.input_ids", "input1.attention_mask"]


def _need(module: str):
    try:
        return __import__(module)
    except ImportError as exc:
        raise MissingFileError(f"The ONNX export needs {module}: pip install 'mm-lsr-opensearch[onnx]' "
                               "(onnx, onnxruntime), or export --format torchscript.") from exc


def export_onnx(module: torch.nn.Module, example: tuple[torch.Tensor, torch.Tensor], path: Path) -> None:
    """Write `module` (input_ids, attention_mask -> weights) as ONNX with the translator's input names."""
    _need("onnx")
    torch.onnx.export(module, example, str(path), input_names=INPUT_NAMES, output_names=["output"],
                      dynamic_axes={INPUT_NAMES[0]: {0: "batch", 1: "length"},
                                    INPUT_NAMES[1]: {0: "batch", 1: "length"}, "output": {0: "batch"}},
                      opset_version=17, dynamo=False)


def run_onnx(path: Path, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
    """The exported graph's weights for a batch, with onnxruntime on the CPU."""
    ort = _need("onnxruntime")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    feeds = {INPUT_NAMES[0]: input_ids.astype(np.int64), INPUT_NAMES[1]: attention_mask.astype(np.int64)}
    return session.run(None, feeds)[0]
