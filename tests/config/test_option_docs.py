"""docs/options.md is generated from the schema and kept up to date."""

import importlib.util
import os.path as osp

import pytest
import yaml

from basicattn.config import schema as S
from basicattn.config.options import validate_options
from basicattn.config.yaml_io import OptionLoader

REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DOCS = osp.join(REPO_ROOT, 'docs', 'options.md')


@pytest.fixture(scope='module')
def gen():
    path = osp.join(REPO_ROOT, 'tools', 'gen_option_docs.py')
    spec = importlib.util.spec_from_file_location('gen_option_docs_under_test', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope='module')
def docs_text():
    with open(DOCS, encoding='utf-8') as f:
        return f.read()


def test_docs_up_to_date(gen, docs_text, capsys):
    assert docs_text == gen.render(), (
        'docs/options.md is out of date: run python tools/gen_option_docs.py'
    )
    assert gen.main(['--check']) == 0


def test_every_schema_key_documented(docs_text):
    paths = [path for path, _ in S.iter_schema()]
    assert len(paths) == len(set(paths)) > 30
    missing = [path for path in paths if f'| `{path}` |' not in docs_text]
    assert not missing, f'not in docs/options.md: {missing}'


def test_section_docs_and_defaults_shown(docs_text):
    for key, spec in S.OPTION_SCHEMA.fields.items():
        if spec.doc:
            assert spec.doc.split('`')[0] in docs_text, key
    assert "| `model_type` | `str` | `'SRModel'` |" in docs_text
    assert '| `scale` | `int`, >= 1 | **required** |' in docs_text
    assert '| `train.warmup_iter` | `int`, >= -1 | `-1` |' in docs_text
    assert '| `logger.max_keep_ckpts` | `int`, -1 or >= 1 | `-1` |' in docs_text
    assert '| `dist_params.timeout` | `int`, >= 1 | `600` |' in docs_text
    assert '`params`' in docs_text  # injected arguments are listed


@pytest.mark.parametrize(
    'heading',
    [
        '## How `type:` blocks work',
        '## Datasets and loader keys',
        '## Reference: every key',
        '## Overriding keys with `--set`',
        '## Your own classes: `custom_imports`',
        '## What the tools do with each section',
        '## A complete example',
    ],
)
def test_prose_sections_present(docs_text, heading):
    assert f'\n{heading}\n' in docs_text


def test_check_detects_stale_and_missing_files(gen, tmp_path, capsys):
    target = tmp_path / 'options.md'
    assert gen.main(['--check', '--output', str(target)]) == 1
    assert gen.main(['--output', str(target)]) == 0
    assert gen.main(['--check', '--output', str(target)]) == 0
    target.write_text(target.read_text(encoding='utf-8') + 'edited\n', encoding='utf-8')
    assert gen.main(['--check', '--output', str(target)]) == 1
    assert 'out of date' in capsys.readouterr().err


def test_examples_are_valid(gen):
    train = yaml.load(gen.EXAMPLE_TRAIN, Loader=OptionLoader)
    validate_options(train, source='EXAMPLE_TRAIN', purpose='train')
    assert train['train']['optim_g']['lr'] == 1e-4
    test = yaml.load(gen.EXAMPLE_TEST, Loader=OptionLoader)
    validate_options(test, source='EXAMPLE_TEST', purpose='test')


def test_example_sets_every_top_level_and_section_key(gen):
    example = yaml.load(gen.EXAMPLE_TRAIN, Loader=OptionLoader)
    for path, spec in S.iter_schema():
        if '<set>' in path:
            assert path.rsplit('.', 1)[-1] in example['datasets']['train'], path
            continue
        if '<i>' in path or isinstance(spec, S.ListOf):
            continue  # train.stages: its own example in tests/engine/test_stage_hook.py
        node = example
        for key in path.split('.'):
            assert key in node, path
            node = node[key]


def test_test_time_keys_come_from_the_test_config(docs_text):
    """val.self_ensemble/tile/chop/sequence ... are written once, in config/test_settings.py."""
    from basicattn.config.test_settings import option_settings

    val = S.OPTION_SCHEMA.fields['val'].fields
    for setting in option_settings():
        spec = val[setting.name]
        assert (spec.types, spec.default, spec.doc, spec.bound) == (
            setting.types,
            setting.default,
            setting.help,
            setting.bound,
        )
        assert f'| `val.{setting.name}` |' in docs_text
    assert 'clamp' not in val  # a model argument, not an option key
