"""The package's layers: every import points down, no cycles, lazy imports say why.

:data:`LAYERS` is the one place where the layer order is written. A module may
import modules of its own package or of a package listed before its own
(lower); never one listed after it. Function-level imports count too: hiding
an import in a function does not change which way it points.
"""

import ast
import os
import os.path as osp
import re

from conftest import REPO_ROOT

#: Bottom to top. Each entry is a top-level name under ``basicattn``.
LAYERS = (
    'version',
    'errors',
    'utils',  # files, images, numbers: knows nothing of networks or options
    'registry',
    'data',  # datasets and image/video files
    'config',  # option files: reading, inheritance, schema, validation
    'checkpoint',  # the safe loader/writer, safetensors, experiment folders
    'ops',
    'archs',  # networks, and building one from a config (archs/build.py)
    'converters',  # the authors' weights; a network from any weights file
    'losses',
    'metrics',
    'visualization',
    'models',
    'deploy',
    'engine',  # the training/testing runtime on mmengine
    'analysis',  # analyses of trained networks (taps, LAM, studies)
)

#: The one-word reasons a function-level import may give (``# lazy: <word>``).
LAZY_REASONS = {
    'cheap': "keeps `import basicattn` or a tool's --help from loading torch or heavy modules",
    'optional': 'an optional dependency (onnx, onnxruntime, mmcv, lpips weights ...)',
    'registry': 'the registry location: importing it registers the classes',
}

PACKAGE = osp.join(REPO_ROOT, 'basicattn')


def _modules():
    for folder, _, files in os.walk(PACKAGE):
        for name in sorted(files):
            if name.endswith('.py'):
                path = osp.join(folder, name)
                rel = osp.relpath(path, REPO_ROOT)[:-3].replace(os.sep, '.')
                module = rel[: -len('.__init__')] if rel.endswith('.__init__') else rel
                yield module, path, name == '__init__.py'


MODULES = {module: (path, is_package) for module, path, is_package in _modules()}


def _imports(module):
    """(target module, line number, inside a function, source line) of each basicattn import."""
    path, is_package = MODULES[module]
    source = open(path, encoding='utf-8').read()
    lines = source.splitlines()
    package = module if is_package else module.rpartition('.')[0]
    found = []

    def visit(node, in_function):
        for child in ast.iter_child_nodes(node):
            inner = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef))
            if isinstance(child, ast.Import):
                targets = [alias.name for alias in child.names]
            elif isinstance(child, ast.ImportFrom):
                if child.level:
                    parts = package.split('.')
                    base = '.'.join(parts[: len(parts) - child.level + 1])
                    base = f'{base}.{child.module}' if child.module else base
                else:
                    base = child.module or ''
                # `from pkg import submodule` imports the submodule
                targets = [
                    f'{base}.{a.name}' if f'{base}.{a.name}' in MODULES else base
                    for a in child.names
                ]
            else:
                visit(child, inner)
                continue
            for target in targets:
                if target == 'basicattn' or target.startswith('basicattn.'):
                    found.append(
                        (
                            target,
                            child.lineno,
                            in_function,
                            '\n'.join(lines[child.lineno - 1 : child.end_lineno]),
                        )
                    )

    visit(ast.parse(source), False)
    return found


def _layer(module):
    parts = module.split('.')
    return LAYERS.index(parts[1]) if len(parts) > 1 else -1  # the root package is below all


def test_every_package_has_a_layer():
    tops = {m.split('.')[1] for m in MODULES if '.' in m}
    assert sorted(tops - set(LAYERS)) == [], 'add the new package to LAYERS'


def test_imports_point_down_the_layers():
    upward = []
    for module in MODULES:
        if module == 'basicattn':
            continue
        for target, line, _, _ in _imports(module):
            if target != 'basicattn' and _layer(target) > _layer(module):
                upward.append(f'{module}:{line} imports {target}')
    assert upward == [], '\n'.join(upward)


def test_module_level_imports_have_no_cycles():
    graph = {
        m: sorted({t for t, _, inner, _ in _imports(m) if not inner and t in MODULES})
        for m in MODULES
    }
    for module in graph:  # a package is imported before its submodules; not an edge back
        graph[module] = [t for t in graph[module] if not module.startswith(t + '.')]
    cycles, state = [], {}

    def walk(node, stack):
        state[node] = 'open'
        stack.append(node)
        for nxt in graph[node]:
            if state.get(nxt) == 'open':
                cycles.append(' -> '.join(stack[stack.index(nxt) :] + [nxt]))
            elif nxt not in state:
                walk(nxt, stack)
        stack.pop()
        state[node] = 'done'

    for module in sorted(graph):
        if module not in state:
            walk(module, [])
    assert cycles == [], '\n'.join(cycles)


def test_function_level_imports_give_a_one_word_reason():
    """An import inside a function is allowed for a reason in :data:`LAZY_REASONS` only."""
    unexplained = set()
    for module in MODULES:
        for _, line, inner, text in _imports(module):
            reason = re.search(r'#\s*lazy:\s*(\w+)', text)
            if inner and (reason is None or reason.group(1) not in LAZY_REASONS):
                unexplained.add(f'{module}:{line} {text.splitlines()[0].strip()}')
    unexplained = sorted(unexplained)
    assert unexplained == [], (
        f'{len(unexplained)} function-level imports without `# lazy: <{"|".join(LAZY_REASONS)}>`'
        ' (or import at module level):\n' + '\n'.join(unexplained)
    )
