"""Safe YAML reading for option files and ``--set`` overrides.

PyYAML follows YAML 1.1, where ``1e-4`` (no dot, signed exponent) is a
string. Option files are full of learning rates written that way, so the
loader here resolves every YAML 1.2 float form as a float. Nothing is ever
evaluated: only plain scalars, lists and mappings come out.
"""

from __future__ import annotations

import re
from typing import Any

import yaml

from basicattn.errors import OptionError


class OptionLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that reads ``1e-4``, ``5E3`` and ``.5`` as floats.

    A key written twice in one mapping is an error (PyYAML would keep the
    last one silently, and with ``_base_`` files a repeated key is easy to miss).
    """

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

    :func:`basicattn.engine.options.load_option_file` merges the bases.

    Args:
        path (str): YAML file.

    Returns:
        dict: Its content (an empty file gives ``{}``).

    Raises:
        FileNotFoundError: The file does not exist.
        OptionError: The YAML does not parse, or its top level is not a mapping.
    """
    try:
        with open(path, encoding='utf-8') as f:
            data = yaml.load(f, Loader=OptionLoader)
    except yaml.YAMLError as err:
        raise OptionError(f'{path}: not valid YAML: {err}') from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise OptionError(
            f'{path}: the top level must be a mapping of option keys, got {type(data).__name__}'
        )
    return data


def parse_yaml_scalar(text: str) -> Any:
    """Parse one ``--set`` value as a YAML literal (``1e-4``, ``[1, 2]``, ``null``).

    Args:
        text (str): The text after ``=``.

    Returns:
        object: The parsed value; text that is not valid YAML stays a string.
    """
    try:
        return yaml.load(text, Loader=OptionLoader)
    except yaml.YAMLError:
        return text


def dump_yaml(data: Any) -> str:
    """Serialise options to YAML text (block style, keys in their order)."""
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=None)
