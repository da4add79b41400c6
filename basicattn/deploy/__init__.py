"""Deployment: export networks to other runtimes (:mod:`.onnx_export`)."""

from .onnx_export import TOLERANCE, ExportResult, check_onnx, example_input, export_onnx

__all__ = ['TOLERANCE', 'ExportResult', 'check_onnx', 'example_input', 'export_onnx']
