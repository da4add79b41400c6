"""Safe YAML reading for option files and ``--set`` overrides.

PyYAML follows YAML 1.1, where ``1e-4`` (no dot, signed exponent) is a
string. Option files are full of learning rates written that way, so the
loader here resolves every YAML 1.2 float form as a float. Nothing is ever
evaluated: only plain scalars, lists and mappings come out.
"""

import re

import yaml

from basicattn.errors import OptionError


class OptionLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that reads ``1e-4``, ``5E3`` and ``.5`` as floats."""


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


def load_yaml_file(path):
    """Read an option file.

    Args:
        path (str): YAML file.

    Returns:
        dict: Its content (an empty file gives ``{}``).

    Raises:
        FileNotFoundError: The file does not exist.
        ValueError: The YAML does not parse, or its top level is not a mapping.
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


def parse_yaml_scalar(text):
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


def dump_yaml(data):
    """Serialise options to YAML text (block style, keys in their order)."""
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=None)
