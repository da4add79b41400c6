"""The run flags that tools/train.py and tools/test.py share."""

import argparse

from basicattn.utils.run_arguments import add_run_arguments


def _parse(*argv):
    parser = argparse.ArgumentParser()
    add_run_arguments(parser)
    return parser.parse_args(list(argv))


def test_repeated_set_flags_all_apply():
    args = _parse('--set', 'a=1', 'b=2', '--set', 'c=3', '--set', 'd=4')
    assert args.set == ['a=1', 'b=2', 'c=3', 'd=4']


def test_no_set_flag_is_an_empty_list_each_time():
    assert _parse().set == [] and _parse().set == []
