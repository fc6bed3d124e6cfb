"""yolact-serve as a process: real SIGTERM drain, and one-line errors for bad options."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..'))


def _env():
    env = dict(os.environ)
    env['PYTHONPATH'] = ROOT + os.pathsep + env.get('PYTHONPATH', '')
    return env


def test_sigterm_drains_in_flight_requests(serve_onnx, sample_jpegs, make_client):
    proc = subprocess.Popen(
        [sys.executable, '-m', 'yolact_deploy.cli.serve', '--weights', serve_onnx, '--port', '0',
         '--threads', '1', '--batch-window-ms', '0', '--max-batch', '1'],
        stderr=subprocess.PIPE, text=True, env=_env())
    try:
        port, lines = None, []
        deadline = time.monotonic() + 180
        while port is None and time.monotonic() < deadline:
            line = proc.stderr.readline()
            if not line:
                break
            lines.append(line)
            m = re.search(r'on http://127\.0\.0\.1:(\d+)', line)
            port = int(m.group(1)) if m else None
        assert port, ''.join(lines)
        out = [None] * 3

        def worker(i):
            out[i] = make_client(port).detect(sample_jpegs[i], query='?top_k=2')

        threads = [threading.Thread(target=worker, args=(i,)) for i in range(3)]
        for t in threads:
            t.start()
        time.sleep(0.5)  # accepted: one running, two queued (batch 1)
        proc.send_signal(signal.SIGTERM)
        for t in threads:
            t.join(120)
        assert [s for s, _, _ in out] == [200, 200, 200]
        assert all(len(b['results'][0]['detections']) <= 2 for _, b, _ in out)
        rest = proc.communicate(timeout=120)[1]
        assert proc.returncode == 0, rest
        assert 'draining' in rest and 'stopped (drained)' in rest
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.mark.parametrize('argv, needle', [
    (['--weights', '/nonexistent/model.onnx'], 'model file not found'),
    (['--weights', 'x.onnx', '--max-queue', '0'], '--max-queue: expected an integer >= 1'),
    (['--weights', 'x.onnx', '--port', '70000'], 'port must be 0..65535'),
    (['--weights', 'x.onnx', '--score-threshold', '1.5'], '--score-threshold: expected a number in [0, 1]'),
])
def test_cli_errors_are_one_line(argv, needle, capsys):
    from yolact_deploy.cli.serve import main
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith('error: ') and err.strip().count('\n') == 0 and needle in err


def test_cli_port_in_use(serve_onnx, capsys):
    import socket
    from yolact_deploy.cli.serve import main
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        s.listen(1)
        port = s.getsockname()[1]
        assert main(['--weights', serve_onnx, '--port', str(port), '--threads', '1']) == 2
    err = capsys.readouterr().err
    assert f'cannot listen on 127.0.0.1:{port}' in err
