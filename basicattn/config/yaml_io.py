"""Safe YAML reading for option files and ``--set`` overrides.

PyYAML follows YAML 1.1, where ``1e-4`` (no dot, signed exponent) is a
string. Option files are full of learning rates written that way, so the
loader here resolves every YAML 1.2 float form as a float. Nothing is ever
evaluated: only plain scalars, lists and mappings come out.

Every option file (``_base_`` files too) and every ``--set`` value is read
within bounds, so that a hostile or broken file fails in milliseconds with
one line instead of taking minutes and gigabytes: mappings and lists nest at
most :data:`MAX_DEPTH` levels (deeper would end in a ``RecursionError``), the
nodes that aliases (``*name``) add when expanded number at most
:data:`MAX_ALIAS_NODES` (a "billion laughs" file adds 10**9), an alias may
not refer to the node that contains it, and a file is UTF-8 text of at most
:data:`MAX_FILE_BYTES`.
"""

from __future__ import annotations

import re
from typing import Any

import yaml

from basicattn.errors import OptionError

#: How deep mappings and lists may nest (shipped option files use fewer than 10 levels).
MAX_DEPTH = 64
#: How many nodes aliases may add when expanded (each ``*name`` repeats its anchor's tree).
MAX_ALIAS_NODES = 100_000
#: The largest option file read (shipped ones are a few KiB).
MAX_FILE_BYTES = 16 * 1024 * 1024


class OptionLimitError(yaml.YAMLError):
    """A bound of :class:`OptionLoader` was passed; the message is one line."""


class OptionLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that reads ``1e-4``, ``5E3`` and ``.5`` as floats.

    A key written twice in one mapping is an error (PyYAML would keep the
    last one silently, and with ``_base_`` files a repeated key is easy to miss).
    Nesting, alias expansion and recursive aliases are bounded (module
    docstring): passing a bound raises :class:`OptionLimitError`.
    """

    def __init__(self, stream):
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent, index):
        """Compose one node, refusing to nest deeper than :data:`MAX_DEPTH`."""
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                line = self.peek_event().start_mark.line + 1
                raise OptionLimitError(
                    f'line {line}: mappings and lists nest more than {MAX_DEPTH} levels '
                    'deep; an option file needs far fewer (is this the right file?)'
                )
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def compose_document(self):
        """Compose a document and check what its aliases expand to."""
        node = super().compose_document()
        check_alias_expansion(node)
        return node

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        """Build a mapping, refusing a key that appears twice in it."""
        if isinstance(node, yaml.MappingNode):
            seen = {}
            for key_node, _ in node.value:
                if not isinstance(key_node, yaml.ScalarNode) or key_node.tag.endswith(':merge'):
                    continue
                key = (key_node.tag, key_node.value)
                if key in seen:
                    raise yaml.constructor.ConstructorError(
                        'while reading a mapping',
                        node.start_mark,
                        f'key {key_node.value!r} is written twice (first {seen[key]})',
                        key_node.start_mark,
                    )
                seen[key] = f'on line {key_node.start_mark.line + 1}'
        return super().construct_mapping(node, deep=deep)


def _children(node: yaml.Node) -> list:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    return []


def check_alias_expansion(root: yaml.Node) -> None:
    """Refuse a composed document whose aliases expand too far, too deep or into a loop.

    An alias is the same node object as its anchor, so the composed graph is
    small even when its expansion is not. One pass over the distinct nodes
    (iterative: no recursion) computes each node's expanded size and depth.

    Raises:
        OptionLimitError: The expansion adds more than :data:`MAX_ALIAS_NODES`
            nodes, nests deeper than :data:`MAX_DEPTH`, or an alias refers
            to a node that contains it.
    """
    done = {}  # id(node) -> (expanded nodes, expanded depth)
    open_ = set()  # ids of the nodes on the current path
    stack = [(root, False)]
    too_big = None  # the first (smallest) node whose expansion passes the bound
    while stack:
        node, leaving = stack.pop()
        key = id(node)
        if leaving:
            open_.discard(key)
            kids = [done[id(k)] for k in _children(node)]
            size = 1 + sum(k[0] for k in kids)
            depth = 1 + max((k[1] for k in kids), default=0)
            done[key] = (size, depth)
            if depth > MAX_DEPTH:
                raise OptionLimitError(
                    f'line {node.start_mark.line + 1}: aliases (*name) nest mappings and lists '
                    f'more than {MAX_DEPTH} levels deep; write the values out'
                )
            if too_big is None and size > MAX_ALIAS_NODES:
                too_big = node
            continue
        if key in done:
            continue
        open_.add(key)
        stack.append((node, True))
        for kid in _children(node):
            if id(kid) in open_:
                raise OptionLimitError(
                    f'line {kid.start_mark.line + 1}: an alias (*name) refers to a mapping or '
                    'list that contains it; option values cannot be recursive'
                )
            if id(kid) not in done:
                stack.append((kid, False))
    added = done[id(root)][0] - len(done)
    if added > MAX_ALIAS_NODES:
        line = too_big.start_mark.line + 1 if too_big is not None else 1
        raise OptionLimitError(
            f'line {line}: aliases (*name) expand to {added:,} more values than are written '
            f'(at most {MAX_ALIAS_NODES:,}: a "billion laughs" file?); write the values out '
            'or use fewer aliases'
        )


_FLOAT_PATTERN = re.compile(
    r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
        |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
        |[-+]?\.[0-9_]+(?:[eE][-+]?[0-9]+)?
        |[-+]?\.(?:inf|Inf|INF)
        |\.(?:nan|NaN|NAN))$""",
    re.X,
)

# Replace the float resolver for the characters a float can start with.
OptionLoader.yaml_implicit_resolvers = {
    key: [(tag, regexp) for tag, regexp in resolvers if tag != 'tag:yaml.org,2002:float']
    for key, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
OptionLoader.add_implicit_resolver('tag:yaml.org,2002:float', _FLOAT_PATTERN, list('-+0123456789.'))


def load_yaml_file(path: str) -> dict[str, Any]:
    """Read one option file as it is written (``_base_`` files are not followed).

    :func:`basicattn.config.options.load_option_file` merges the bases.

    Args:
        path (str): YAML file.

    Returns:
        dict: Its content (an empty file gives ``{}``).

    Raises:
        FileNotFoundError: The file does not exist.
        OptionError: The file is not UTF-8 text (binary content), is larger
            than :data:`MAX_FILE_BYTES`, passes a bound of
            :class:`OptionLoader`, does not parse, or its top level is not a
            mapping.
    """
    text = read_option_text(path)
    try:
        data = yaml.load(text, Loader=OptionLoader)
    except OptionLimitError as err:
        raise OptionError(f'{path}: {err}') from None
    except yaml.reader.ReaderError as err:  # a control character (NUL ...) in UTF-8 text
        offset = len(text[: err.position].encode('utf-8'))
        line = text.count('\n', 0, err.position) + 1
        raise OptionError(
            f'{path}: not a text file: character 0x{err.character:02x} at byte offset {offset} '
            f'(line {line}); an option file is YAML '
            'text (is this the right file?)'
        ) from None
    except yaml.YAMLError as err:
        raise OptionError(f'{path}: not valid YAML: {err}') from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise OptionError(
            f'{path}: the top level must be a mapping of option keys, got {type(data).__name__}'
        )
    return data


def read_option_text(path: str) -> str:
    """The text of an option file, or one line naming the file and the first bad byte.

    Raises:
        OptionError: Larger than :data:`MAX_FILE_BYTES`, or not UTF-8 (a
            UTF-8 byte-order mark is allowed).
    """
    with open(path, 'rb') as f:
        raw = f.read(MAX_FILE_BYTES + 1)
    if len(raw) > MAX_FILE_BYTES:
        raise OptionError(
            f'{path}: larger than {MAX_FILE_BYTES // 2**20} MiB, so not an option file '
            '(is this the right file?)'
        )
    try:
        return raw.decode('utf-8-sig')
    except UnicodeDecodeError as err:
        line = raw.count(b'\n', 0, err.start) + 1
        raise OptionError(
            f'{path}: not UTF-8 text: byte 0x{raw[err.start]:02x} at byte offset {err.start} '
            f'(line {line}); save the option file as UTF-8 '
            '(is this the right file?)'
        ) from None


def parse_yaml_scalar(text: str, source: str = '--set') -> Any:
    """Parse one ``--set`` value as a YAML literal (``1e-4``, ``[1, 2]``, ``null``).

    Args:
        text (str): The text after ``=``.
        source (str): Named in errors (``--set train.x``).

    Returns:
        object: The parsed value; text that is not valid YAML stays a string.

    Raises:
        OptionError: The value passes a bound of :class:`OptionLoader`.
    """
    try:
        return yaml.load(text, Loader=OptionLoader)
    except OptionLimitError as err:
        raise OptionError(f'{source}: {err}') from None
    except yaml.YAMLError:
        return text


def dump_yaml(data: Any) -> str:
    """Serialise options to YAML text (block style, keys in their order)."""
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=None)
