"""Deployment: export networks to ONNX and run the exported files.

* :mod:`.onnx_export`: trace, simplify, convert to float16 and check against PyTorch.
* :mod:`.onnx_graph`: the graph passes (onnxslim, float16).
* :mod:`.onnx_step`: a recurrent arch's step with its state as explicit tensors.
* :mod:`.onnx_stream`: an exported file as a network ``tools/infer.py`` runs
  (``--backend onnxruntime``), carrying a step graph's state frame to frame.
"""

from .onnx_export import FP16_TOLERANCE, TOLERANCE, ExportResult, check_onnx, export_onnx
from .onnx_step import example_input

__all__ = [
    'FP16_TOLERANCE',
    'TOLERANCE',
    'ExportResult',
    'check_onnx',
    'example_input',
    'export_onnx',
]
