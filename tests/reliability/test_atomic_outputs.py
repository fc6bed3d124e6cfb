"""Atomic outputs under faults: a full disk (injected ENOSPC), SIGTERM and SIGINT during a write, SIGKILL
(the next run removes the leftovers it owns, and only those), and the tools that must fail before
they leave anything behind (yolact-infer's output folder, yolact-pipeline's bad --images)."""
from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from yolact_deploy import fileio
from yolact_deploy.errors import CheckpointError
from yolact_deploy.fileio import PREFIX, atomic_output, remove_stale_temporaries

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..'))


def leftovers(folder) -> list:
    return sorted(n for n in os.listdir(folder) if n.startswith(('.tmp', PREFIX)))


def test_temp_names_say_whose_they_are(tmp_path):
    with atomic_output(str(tmp_path / 'a.bin')) as tmp:
        name = os.path.basename(tmp)
        assert name.startswith(fileio.temp_prefix()) and str(os.getpid()) in name
        open(tmp, 'wb').write(b'x')
    assert (tmp_path / 'a.bin').read_bytes() == b'x' and leftovers(tmp_path) == []


def test_full_disk_leaves_the_old_file_and_no_temporary(tmp_path):
    final = tmp_path / 'model.onnx'
    final.write_bytes(b'old')
    with pytest.raises(OSError) as info:
        with atomic_output(str(final)) as tmp:
            with open(tmp, 'wb') as f:
                f.write(b'half a file')
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    assert info.value.errno == errno.ENOSPC
    assert final.read_bytes() == b'old' and leftovers(tmp_path) == []


def test_full_disk_while_saving_a_checkpoint_is_one_line(tmp_path, monkeypatch):
    import torch

    from yolact_deploy import checkpoint
    from yolact_deploy.testing import make_test_model
    model = make_test_model('yolact_resnet50', 256)

    def full_disk(obj, path):
        with open(path, 'wb') as f:
            f.write(b'\0' * 1000)
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    monkeypatch.setattr(torch, 'save', full_disk)
    with pytest.raises(CheckpointError, match='No space left on device'):
        checkpoint.save_checkpoint(str(tmp_path / 'ck.pth'), model)
    assert os.listdir(tmp_path) == []


WRITER = textwrap.dedent('''
    import os, sys, time
    sys.path.insert(0, {root!r})
    from yolact_deploy.cli.common import cli_main, atomic_output
    from yolact_deploy.fileio import make_temp_dir

    @cli_main
    def main(argv=None):
        make_temp_dir({folder!r}, 'repo')         # a folder output (the Triton repository)
        with atomic_output({final!r}) as tmp:
            with open(tmp, 'wb') as f:
                f.write(b'half')
                f.flush()
                print('writing', flush=True)
                time.sleep(60)
                f.write(b' and the rest')
        return 0
    sys.exit(main())
''')


def start_writer(tmp_path):
    final = str(tmp_path / 'out.pth')
    script = WRITER.format(root=ROOT, folder=str(tmp_path), final=final)
    proc = subprocess.Popen([sys.executable, '-c', script], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == 'writing'
    assert len(leftovers(tmp_path)) == 2  # the file and the folder, while it writes
    return proc, final


@pytest.mark.parametrize('sig,code,word', [(signal.SIGTERM, 143, 'terminated'),
                                           (signal.SIGINT, 130, 'interrupted')])
def test_signal_during_a_write_removes_the_temporaries(tmp_path, sig, code, word):
    proc, final = start_writer(tmp_path)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == code and err.strip() == word, err
    assert not os.path.exists(final) and leftovers(tmp_path) == []


def test_sigkill_leftovers_are_removed_by_the_next_write_and_only_ours(tmp_path):
    proc, final = start_writer(tmp_path)
    proc.kill()
    proc.wait(30)
    stale = leftovers(tmp_path)
    assert len(stale) == 2 and not os.path.exists(final)
    # Not ours to remove: another tool's temp file, a live process's, another host's.
    keep = ['.tmp-other-tool.bin', f'{PREFIX}{fileio._HOST}.{os.getppid()}.abc.pth',
            f'{PREFIX}00000000.{proc.pid}.abc.pth']
    for name in keep:
        (tmp_path / name).write_bytes(b'x')
    with atomic_output(str(tmp_path / 'next.pth')) as tmp:
        open(tmp, 'wb').write(b'ok')
    assert sorted(leftovers(tmp_path)) == sorted(keep)
    assert remove_stale_temporaries(str(tmp_path)) == []


def test_failed_infer_leaves_no_output_folder(tmp_path, samples):
    from yolact_deploy.cli import infer
    out = tmp_path / 'runs' / 'infer'
    bad = tmp_path / 'bad.jpg'
    bad.write_bytes(b'not a jpeg')
    assert infer.main(['--output', str(out), str(bad)]) == 2
    assert infer.main(['--output', str(out), '--weights', str(tmp_path / 'no.pth'), samples[0]]) == 2
    assert not (tmp_path / 'runs').exists()
    (tmp_path / 'file').write_text('x')
    assert infer.main(['--output', str(tmp_path / 'file' / 'sub'), samples[0]]) == 2


def test_pipeline_refuses_bad_images_before_the_export(tmp_path, capsys):
    from yolact_deploy.cli import pipeline
    bad = tmp_path / 'bad.jpg'
    bad.write_bytes(b'not a jpeg')
    t0 = time.monotonic()
    assert pipeline.main(['--out', str(tmp_path / 'p'), '--images', str(bad), '--no-trt']) == 2
    assert time.monotonic() - t0 < 10  # the export alone takes longer
    assert 'bad.jpg' in capsys.readouterr().err
    assert not (tmp_path / 'p').exists()
    assert pipeline.main(['--out', str(tmp_path / 'p'), '--images', str(tmp_path / 'nope'),
                          '--no-trt']) == 2
