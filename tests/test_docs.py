"""The docs tell the truth about the repository they ship in.

* No doc or docstring cites a file that is not in the repository (the design
  notes and method specs the project started from, the paper texts): the
  facts a reader needs are in ``docs/``, papers are cited by title and link.
* Every relative Markdown link points at a file of the repository.
* Every ``dataroot_*`` of every shipped option file (after ``_base_``
  inheritance) follows the one data layout of ``datasets/README.md``. The
  layout is :data:`LAYOUT` here and the fenced block under the README's
  ``## Layout`` heading there; the two must list the same paths, so neither
  can drift from the other.
"""

import ast
import glob
import os.path as osp
import re

import pytest
from conftest import REPO_ROOT

from basicattn.config.options import load_option_file

DATA_README = osp.join(REPO_ROOT, 'datasets', 'README.md')

# The layout of datasets/README.md, relative to datasets/. Placeholders:
# <Set> a benchmark test set, <s> the option file's scale, <split> train or
# val, ... anything below (the demo folder, written by tools/demo.py).
LAYOUT = (
    '<Set>/X<s>/HR',
    '<Set>/X<s>/LR',
    '<Set>/X<s>/LR_BD',
    '<Set>/X<s>/LR_DN',
    'DIV2K/DIV2K_train_HR',
    'DIV2K/DIV2K_train_HR_mod<s>',
    'DIV2K/DIV2K_train_LR_bicubic/X<s>',
    'DIV2K/DIV2K_train_LR_BD/X<s>',
    'DIV2K/DIV2K_train_LR_DN/X<s>',
    'DIV2K/DIV2K_train_HR.lmdb',
    'DIV2K/DIV2K_train_LR_bicubic_X<s>.lmdb',
    'vimeo90k/sequences',
    'vimeo90k/BIx4',
    'vimeo90k/BDx4',
    'vimeo90k/vimeo90k_train_GT.lmdb',
    'vimeo90k/vimeo90k_train_BIx4.lmdb',
    'REDS/train_sharp',
    'REDS/train_sharp_bicubic/X4',
    'REDS/train_sharp.lmdb',
    'REDS/train_sharp_bicubic_X4.lmdb',
    'Vid4/GT',
    'Vid4/BIx4',
    'Vid4/BDx4',
    'UDM10/GT',
    'UDM10/BDx4',
    'Vid3oC/<split>/HR',
    'Vid3oC/<split>/LR_bicubic/X16',
    'IntVID/HR',
    'Youku-VESR/<split>/GT',
    'Youku-VESR/<split>/LQ',
    'Youku-VESR/test/GT',
    'Youku-VESR/test/LQ',
    'Parkour/GT',
    'SPMCS/GT',
    'SPMCS/BIx4',
    'demo/...',
)
PLACEHOLDERS = {
    '<Set>': '(?:Set5|Set14|B100|Urban100|Manga109)',
    '<s>': '(?P<s>[0-9]+)',
    '<split>': '(?:train|val)',
    '...': '.+',
}
# dataroots that read the shared test data directly instead of datasets/
# (none today: the tiny and demo files read datasets/ like the others).
SHARED_TESTDATA_DATAROOTS = ()

OUTSIDE_FILE = re.compile(r'DESIGN\.md|SPECS(?:\.md)?\b|shared/papers|shared/docs')


def markdown_files():
    """The Markdown files a reader of the repository is sent to."""
    files = glob.glob(osp.join(REPO_ROOT, 'docs', '**', '*.md'), recursive=True)
    files += [osp.join(REPO_ROOT, name) for name in ('README.md', 'CONTRIBUTING.md')]
    files.append(DATA_README)
    return sorted(osp.relpath(p, REPO_ROOT) for p in files if osp.isfile(p))


def package_files():
    pattern = osp.join(REPO_ROOT, 'basicattn', '**', '*.py')
    return sorted(osp.relpath(p, REPO_ROOT) for p in glob.glob(pattern, recursive=True))


def docstrings(path):
    """(line, text) of the module, class and function docstrings of a file."""
    with open(osp.join(REPO_ROOT, path), encoding='utf-8') as f:
        tree = ast.parse(f.read())
    nodes = [tree] + [
        n
        for n in ast.walk(tree)
        if isinstance(n, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
    ]
    for node in nodes:
        text = ast.get_docstring(node, clean=False)
        if text:
            yield getattr(node, 'lineno', 1), text


def read(path):
    with open(osp.join(REPO_ROOT, path), encoding='utf-8') as f:
        return f.read()


def test_the_files_exist():
    assert 'docs/design.md' in markdown_files()
    assert len(package_files()) > 50


@pytest.mark.parametrize('path', markdown_files())
def test_markdown_cites_no_file_outside_the_repository(path):
    for number, line in enumerate(read(path).splitlines(), 1):
        assert not OUTSIDE_FILE.search(line), f'{path}:{number}: {line.strip()}'
        # the shared test data may be named only as what the tests read
        if 'shared/data' in line:
            assert 'BASICATTN_TESTDATA' in line or 'tests' in line, f'{path}:{number}: {line}'


def test_docstrings_cite_no_file_outside_the_repository():
    found = [
        f'{path}:{line}: {OUTSIDE_FILE.search(text).group(0)}'
        for path in package_files()
        for line, text in docstrings(path)
        if OUTSIDE_FILE.search(text)
    ]
    assert not found


LINK = re.compile(r'\[[^\]]*\]\(([^)\s]+)\)')


@pytest.mark.parametrize('path', markdown_files())
def test_relative_links_point_at_files_of_the_repository(path):
    folder = osp.dirname(osp.join(REPO_ROOT, path))
    broken = []
    for target in LINK.findall(read(path)):
        if re.match(r'[a-z][a-z0-9+.-]*:', target) or target.startswith('#'):
            continue  # a URL (https:, mailto:) or an anchor of this page
        file = osp.normpath(osp.join(folder, target.split('#')[0]))
        inside = osp.commonpath([file, REPO_ROOT]) == REPO_ROOT
        if not inside or not osp.exists(file):
            broken.append(target)
    assert not broken, f'{path}: {broken}'


def readme_layout():
    """The paths of the fenced block under ``## Layout`` in datasets/README.md."""
    text = read(DATA_README)
    match = re.search(r'^## Layout\n.*?^```[a-z]*\n(.*?)^```', text, re.S | re.M)
    assert match, 'datasets/README.md has no fenced block under "## Layout"'
    lines = [line for line in match.group(1).splitlines() if line.strip()]
    assert lines[0].strip() == 'datasets/'
    return [line.split()[0].rstrip('/') for line in lines[1:]]


def test_layout_is_the_one_of_datasets_readme():
    listed = readme_layout()
    assert sorted(listed) == sorted(LAYOUT)
    assert len(listed) == len(set(listed)), 'a path is listed twice'


def layout_match(path):
    """The match of a dataroot against :data:`LAYOUT`, or None."""
    for pattern in LAYOUT:
        regex = re.escape('datasets/' + pattern)
        for placeholder, value in PLACEHOLDERS.items():
            regex = regex.replace(re.escape(placeholder), value)
        match = re.fullmatch(regex, path)
        if match:
            return match
    return None


def option_files():
    pattern = osp.join(REPO_ROOT, 'options', '**', '*.yml')
    paths = (osp.relpath(p, REPO_ROOT) for p in glob.glob(pattern, recursive=True))
    return sorted(p for p in paths if '_base_' not in p.split(osp.sep)[:-1])


def dataroots(path):
    """(where, value, scale) of every ``dataroot_*`` after ``_base_`` merging."""
    opt, _ = load_option_file(osp.join(REPO_ROOT, path))
    for name, block in (opt.get('datasets') or {}).items():
        for key, value in block.items():
            if key.startswith('dataroot_'):
                yield f'{path}: datasets.{name}.{key}', value, opt.get('scale')


def test_option_files_have_dataroots():
    assert sum(1 for path in option_files() for _ in dataroots(path)) >= 50


@pytest.mark.parametrize('path', option_files())
def test_option_dataroots_follow_the_layout(path):
    for where, value, scale in dataroots(path):
        if (path, value) in SHARED_TESTDATA_DATAROOTS:
            continue
        match = layout_match(value)
        assert match, f'{where}: {value} is not in the layout of datasets/README.md'
        if 's' in match.groupdict() and match.group('s') is not None:
            assert int(match.group('s')) == scale, f'{where}: {value} for scale {scale}'


@pytest.mark.parametrize('path', option_files())
def test_option_files_do_not_point_outside_the_repository(path):
    for number, line in enumerate(read(path).splitlines(), 1):
        assert '../shared' not in line, f'{path}:{number}: {line.strip()}'


def test_feature_table_is_the_one_the_arch_facts_give():
    """docs/features.md's per-arch table is written from the arch classes' facts."""
    import importlib.util

    path = osp.join(REPO_ROOT, 'tools', 'gen_features_doc.py')
    spec = importlib.util.spec_from_file_location('gen_features_doc_under_test', path)
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    with open(osp.join(REPO_ROOT, 'docs', 'features.md'), encoding='utf-8') as f:
        text = f.read()
    assert tool.updated(text) == text, (
        'docs/features.md is out of date: run python tools/gen_features_doc.py'
    )
