"""Graph passes of an exported ONNX model: simplification and float16.

* :func:`simplify_graph`: onnxslim (constant folding, dead-node and
  shape-arithmetic removal, fusions). The TorchScript exporter leaves chains
  of ``Shape``/``Gather``/``Concat`` nodes for every size it traced and a
  ``Cast`` for every ``.to(float32)``; onnxslim removes what does not depend
  on the input, which halves the node count of DASAA (359 to 158 nodes at
  the tiny test size). The export checks the simplified graph against
  PyTorch, so simplification can never ship an unchecked graph.
* :func:`to_float16`: onnxruntime's float16 converter
  (``onnxruntime.transformers.float16``, maintained with onnxruntime and
  shipped in its wheel). Weights and activations become float16; the graph's
  inputs and outputs stay float32 (``keep_io_types``) with a ``Cast`` behind
  the inputs and before the outputs, so the same float32 images (and a
  recurrent graph's float32 state) feed an fp32 and an fp16 file, and a
  runner needs no precision switch. The state of a step graph crosses the
  boundary as float32 and is cast back to float16 inside, which is exact for
  values the graph produced in float16.

  onnxconverter-common's ``convert_float_to_float16`` (1.16.0, its latest
  release) was tried first: on torch 2.13's graphs it leaves ``Cast(to=FLOAT)``
  nodes whose outputs it types as float16 and mistypes the ``Resize`` it
  keeps in float32, so onnxruntime refused 7 of the 9 registered archs
  (onnxconverter-common issues 320 and 306); onnxruntime's copy handles both.
"""

from typing import Dict, Iterable, List

from basicattn.errors import UserError

__all__ = ['require_onnxslim', 'simplify_graph', 'to_float16', 'FP16_OP_BLOCK_LIST']

#: Ops kept in float32 by :func:`to_float16`, beyond onnxruntime's default list:
#: onnxruntime's CPU provider has no float16 ``ScatterElements`` with
#: ``reduction='add'`` (DKSAN's deformable kernels build their weights with it).
FP16_OP_BLOCK_LIST = ('ScatterElements',)


def require_onnxslim():
    """Import and return onnxslim.

    Raises:
        UserError: It is not installed (with the install command and the flag
            that does without it).
    """
    try:
        import onnxslim
    except ImportError:
        raise UserError(
            "graph simplification needs onnxslim (not installed): pip install -e '.[export]', "
            'or export with --no-simplify'
        ) from None
    return onnxslim


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0][:300] if text else type(err).__name__


def simplify_graph(model: bytes, name: str) -> bytes:
    """``model`` simplified by onnxslim (serialised ONNX in and out).

    Raises:
        UserError: onnxslim is missing or fails (naming ``--no-simplify``).
    """
    import onnx

    onnxslim = require_onnxslim()
    try:
        slim = onnxslim.slim(onnx.load_from_string(model))
    except Exception as err:  # noqa: BLE001  (onnxslim raises many kinds)
        raise UserError(
            f'{name}: onnxslim could not simplify the graph ({_first_line(err)}); '
            'export with --no-simplify'
        ) from None
    return slim.SerializeToString()


def _subgraphs(graph) -> Iterable:
    """The graphs held by the attributes of ``graph``'s nodes (Loop and If bodies)."""
    from onnx import AttributeProto

    for node in graph.node:
        for attr in node.attribute:
            if attr.type == AttributeProto.GRAPH:
                yield attr.g
            elif attr.type == AttributeProto.GRAPHS:
                yield from attr.graphs


def _rename_uses(graph, renames: Dict[str, str]) -> None:
    """Rename the uses of ``renames``' keys in ``graph`` and the graphs inside it."""
    for node in graph.node:
        for i, name in enumerate(node.input):
            if name in renames:
                node.input[i] = renames[name]
    for info in graph.value_info:
        if info.name in renames:
            info.name = renames[info.name]
    for sub in _subgraphs(graph):
        _rename_uses(sub, renames)


def unique_initializer_names(model) -> None:
    """Give the initializers of subgraphs names no other graph uses (in place).

    onnxslim copies constants into ``Loop`` bodies under the names they have
    in the outer graph; onnxruntime's float16 converter requires every
    initializer name to be unique across the model.
    """
    seen = {init.name for init in model.graph.initializer}
    counter = [0]

    def visit(graph):
        for sub in _subgraphs(graph):
            renames = {}
            for init in sub.initializer:
                if init.name in seen:
                    counter[0] += 1
                    renames[init.name] = f'{init.name}__sub{counter[0]}'
                    init.name = renames[init.name]
                seen.add(init.name)
            if renames:
                _rename_uses(sub, renames)
            visit(sub)

    visit(model.graph)


def to_float16(model: bytes, name: str) -> bytes:
    """``model`` with float16 weights and activations, float32 inputs and outputs.

    Raises:
        UserError: The converter fails (naming the arch).
    """
    import onnx

    try:
        from onnxruntime.transformers import float16
    except ImportError as err:
        raise UserError(
            f'--precision fp16 needs onnxruntime ({err.name} is not installed): '
            "pip install -e '.[export]'"
        ) from None
    proto = onnx.load_from_string(model)
    unique_initializer_names(proto)
    block: List[str] = list(float16.DEFAULT_OP_BLOCK_LIST) + list(FP16_OP_BLOCK_LIST)
    try:
        half = float16.convert_float_to_float16(proto, keep_io_types=True, op_block_list=block)
    except Exception as err:  # noqa: BLE001  (the converter raises asserts and ValueErrors)
        raise UserError(
            f'{name}: the float16 conversion failed ({_first_line(err)}); export with '
            '--precision fp32'
        ) from None
    return half.SerializeToString()
