"""Progress a person can see: demo streaming, per-set progress, quiet start-up dumps."""

import glob
import io
import logging
import os.path as osp
import sys
import uuid

import pytest
from conftest import tool_module
from mmengine.logging import MMLogger

from basicattn.engine.progress import ConsoleDumpFilter, SetProgress, quiet_console

DUMPS = ('System environment', 'Hooks will be executed in the following order')


def test_dumps_reach_the_log_file_not_the_console(tmp_path, capsys):
    log_file = str(tmp_path / 'run.log')
    logger = MMLogger.get_instance(f'quiet_{uuid.uuid4().hex}', log_file=log_file)
    quiet_console(logger)
    logger.info('\n' + '-' * 60 + '\nSystem environment:\n    sys.platform: linux')
    logger.info('Config:\nmodel = dict()')
    logger.info('Hooks will be executed in the following order:\nbefore_run: ...')
    logger.info('Iter(train) [1/6]  eta: 0:00:01  loss: 0.07')
    logger.warning('Config: a warning that starts like a dump')
    console = capsys.readouterr().out
    for handler in logger.handlers:
        handler.flush()
    text = open(log_file).read()
    assert 'Iter(train) [1/6]' in console and 'a warning that starts like a dump' in console
    assert not any(d in console for d in DUMPS) and 'model = dict()' not in console
    assert all(d in text for d in DUMPS) and 'model = dict()' in text


def test_verbose_keeps_the_console_as_it_is(capsys):
    logger = MMLogger.get_instance(f'verbose_{uuid.uuid4().hex}')
    quiet_console(logger, verbose=True)
    logger.info('System environment:\n    sys.platform: linux')
    assert 'System environment' in capsys.readouterr().out
    assert not any(isinstance(f, ConsoleDumpFilter) for h in logger.handlers for f in h.filters)


# ---------------------------------------------------------------- per-set progress


class _Metric:
    name = 'psnr_y_crop2'

    def __init__(self):
        self.results = []


class _Evaluator:
    def __init__(self):
        self.metrics = [_Metric()]


def test_set_progress_bar_on_a_terminal_shows_count_and_running_mean():
    stream, evaluator = io.StringIO(), _Evaluator()
    progress = SetProgress('test', 'Set5', 3, evaluator, stream=stream, tty=True)
    for value in (30.0, 32.0, 34.0):
        evaluator.metrics[0].results.append(dict(key='x', value=value))
        progress.update(1)
    progress.close()
    text = stream.getvalue()
    assert 'test Set5' in text and '3/3' in text
    assert 'psnr_y_crop2 32.0000' in text  # mean of the three


def test_set_progress_without_a_terminal_logs_a_line_per_tenth(capsys):
    MMLogger.get_instance(f'progress_{uuid.uuid4().hex}', log_level=logging.INFO)
    evaluator = _Evaluator()
    progress = SetProgress('val', 'Urban100', 100, evaluator, stream=io.StringIO(), tty=False)
    for i in range(100):
        evaluator.metrics[0].results.append(dict(key=str(i), value=float(i)))
        progress.update(1)
    progress.close()
    lines = [line for line in capsys.readouterr().out.splitlines() if 'val Urban100' in line]
    assert len(lines) == 10
    assert '10/100 images, psnr_y_crop2 4.5000' in lines[0]
    assert '100/100 images' in lines[-1] and 'ETA' in lines[-1]


# ---------------------------------------------------------------- demo streaming

_FAKE_TRAIN = """
import os, sys, time
print('noise before training', flush=True)
print('12/02 05:50:14 - mmengine - INFO - Iter(train) [ 50/500]  lr: 1e-4  eta: 0:01:10  '
      'time: 0.1  data_time: 0.0  loss: 0.0200  loss_pixel: 0.0200', flush=True)
for _ in range(200):  # wait until the parent has shown the progress line
    if os.path.exists(sys.argv[1]):
        break
    time.sleep(0.05)
else:
    sys.exit(3)
print('/path/on/the/last/line', flush=True)
"""


def test_demo_streams_progress_before_the_child_ends(tmp_path):
    demo = tool_module('demo')
    marker = tmp_path / 'shown'

    class Console(io.StringIO):
        def write(self, text):
            marker.write_text('yes')  # the child only ends once this happened
            return super().write(text)

    out = Console()
    status, last = demo.stream_child(
        [sys.executable, '-c', _FAKE_TRAIN, str(marker)], demo.training_progress, out=out
    )
    assert status == 0 and last[-1] == '/path/on/the/last/line'
    assert out.getvalue() == '      iter  50/500  loss 0.0200  eta 0:01:10\n'


def test_demo_shows_the_last_whole_lines_of_a_failed_child():
    demo = tool_module('demo')
    code = "import sys\nfor i in range(30): print('line %d ' % i + 'x' * 200)\nsys.exit(1)"
    out = io.StringIO()
    status, last = demo.stream_child([sys.executable, '-c', code], lambda line: None, out=out)
    assert status == 1 and len(last) == 20
    text = out.getvalue()
    assert 'last 20 lines' in text and 'line 9 ' not in text
    assert 'line 29 ' + 'x' * 200 + '\n' in text and 'line 10 ' + 'x' * 200 + '\n' in text


def test_training_progress_keeps_iteration_loss_eta_and_the_val_result():
    demo = tool_module('demo')
    assert demo.training_progress('Exp name: tiny') is None
    assert demo.training_progress('- INFO - Iter(val) [1/2]    eta: 0:00:00  time: 0.01') is None
    val = '- INFO - Iter(val) [2/2]  tinyval/psnr_y_crop2: 26.7586  data_time: 0.0085  time: 0.01'
    assert demo.training_progress(val) == 'val: tinyval/psnr_y_crop2 26.7586'


# ---------------------------------------------------------------- tools, end to end


@pytest.mark.slow
def test_train_quiet_and_test_verbose_consoles(tiny_experiment, forked_tool):
    opt = tiny_experiment('quiet', **{'train.total_iter': 1, 'val.val_freq': 1})
    out = forked_tool('tools/train.py', '-opt', opt)
    assert out.returncode == 0, out.stderr[-3000:]
    assert not any(d in out.stdout + out.stderr for d in DUMPS)
    assert 'Iter(train) [1/1]' in out.stdout
    (log_file,) = glob.glob(osp.join(tiny_experiment.root, 'quiet', '*', '*.log'))
    text = open(log_file).read()
    assert all(d in text for d in DUMPS)
    assert 'val tinyval: 2/2 images, psnr_y_crop2' in text  # validation progress, no TTY

    test_out = forked_tool(
        'tools/test.py',
        '-opt',
        opt,
        '--verbose',
        '--set',
        f'path.experiments_root={tiny_experiment.root}/quiet_test',
    )
    assert test_out.returncode == 0, test_out.stderr[-3000:]
    assert all(d in test_out.stdout for d in DUMPS)
    assert 'test tinyval: 2/2 images' in test_out.stdout
