"""Load test of yolact-serve on loopback: requests/s, p50/p99 latency and errors at 1, 4 and 16
concurrent clients, then a run at the queue bound (no 503) and past it (503 only as "overloaded"),
then the hostile run: decompression bombs (TIFF 20000x20000, JPEG 10000x10000 behind a fill byte,
WebP, BMP, a JSON request of 16 PNGs of 6000x6000) sent alongside normal traffic, which must all be
refused while the normal requests keep being answered and the server's memory stays under the
ceiling. The server's resident memory is sampled every 20 ms: baseline and peak per request mix.

    python benchmarks/serve_load.py --out benchmarks/results/serve_load.json

The service runs as its own process (python -m yolact_deploy.cli.serve, onnxruntime backend) on
127.0.0.1; clients are threads with one keep-alive connection each, sending the bundled real COCO
images as JPEG uploads round-robin. Every response is checked: status, JSON shape, and the detections
(box, class) against direct Predictor results for that image -- a response that disagrees is counted
as malformed, a request without any response as lost. Bounded: a fixed number of requests per client
and a time cap per phase. The model is the bundled one when installed, else yolact_lite0_256 with
lively random weights (exported to ONNX once into --workdir).
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time


sys.path.insert(0, os.path.join(os.path.dirname(__file__), '..'))

from yolact_deploy import __version__  # noqa: E402
from yolact_deploy.assets import sample_images  # noqa: E402
from yolact_deploy.bench import machine_facts, summarize  # noqa: E402
from yolact_deploy.transforms import load_image  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..'))
SCORE, TOP_K = 0.15, 15


def model_path(workdir: str, weights: str | None) -> tuple:
    if weights:
        return weights, os.path.basename(weights)
    try:
        from yolact_deploy.assets import default_weights
        ckpt = default_weights()
        name = f'bundled {os.path.basename(ckpt)}'
    except Exception:
        ckpt, name = None, 'yolact_lite0_256, lively_random_init(seed=0)'
    path = os.path.join(workdir, 'serve_load_model.onnx')
    if not os.path.exists(path):
        import torch

        from yolact_deploy import config
        from yolact_deploy.export.onnx_export import ExportOptions, export_onnx
        if ckpt:
            from yolact_deploy.checkpoint import load_model
            model = load_model(ckpt)
        else:
            from yolact_deploy.model import Yolact
            from yolact_deploy.testing import lively_random_init
            from yolact_deploy.transforms import preprocess
            cfg = config.get_preset('yolact_lite0_256')
            torch.manual_seed(0)
            model = lively_random_init(Yolact(cfg).eval(), seed=0,
                                       example=preprocess([load_image(sample_images()[0])], cfg))
        print(f'exporting {name} to {path} ...', file=sys.stderr, flush=True)
        export_onnx(model, path, ExportOptions(max_batch=16), quiet=True)
    return path, name


class Server:
    def __init__(self, model: str, threads: int, max_batch: int, max_queue: int, window_ms: float):
        self.args = ['--weights', model, '--port', '0', '--threads', str(threads),
                     '--max-batch', str(max_batch), '--max-queue', str(max_queue),
                     '--batch-window-ms', str(window_ms), '--score-threshold', str(SCORE),
                     '--top-k', str(TOP_K), '--max-connections', '64']
        env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get('PYTHONPATH', ''))
        self.proc = subprocess.Popen([sys.executable, '-m', 'yolact_deploy.cli.serve', *self.args],
                                     stderr=subprocess.PIPE, text=True, env=env)
        self.port = None
        deadline = time.monotonic() + 300
        while self.port is None and time.monotonic() < deadline:
            line = self.proc.stderr.readline()
            if not line:
                raise RuntimeError('yolact-serve exited before listening')
            m = re.search(r'on http://127\.0\.0\.1:(\d+)', line)
            self.port = int(m.group(1)) if m else None
        if self.port is None:
            raise RuntimeError('yolact-serve did not start in time')
        self.log = []
        threading.Thread(target=lambda: self.log.extend(self.proc.stderr), daemon=True).start()

    def rss_mb(self) -> float:
        with open(f'/proc/{self.proc.pid}/status') as f:
            for line in f:
                if line.startswith('VmRSS:'):
                    return int(line.split()[1]) / 1024
        return 0.0

    def watch(self):
        """Context manager sampling the server's RSS; yields a dict filled with baseline/peak MB."""
        server = self

        class _Watch:
            def __enter__(self):
                self.out = {'rss_baseline_mb': round(server.rss_mb(), 1)}
                self.peak, self.stop = self.out['rss_baseline_mb'], threading.Event()

                def loop():
                    while not self.stop.wait(0.02):
                        try:
                            self.peak = max(self.peak, server.rss_mb())
                        except OSError:
                            return
                self.thread = threading.Thread(target=loop, daemon=True)
                self.thread.start()
                return self.out

            def __exit__(self, *exc):
                self.stop.set()
                self.thread.join()
                self.out['rss_peak_mb'] = round(self.peak, 1)
        return _Watch()

    def get(self, path: str) -> dict:
        c = http.client.HTTPConnection('127.0.0.1', self.port, timeout=30)
        c.request('GET', path)
        data = json.loads(c.getresponse().read())
        c.close()
        return data

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(120)


def expected_results(model: str) -> list:
    from yolact_deploy.runtime import load_predictor
    p = load_predictor(model, backend='onnxruntime', threads=1)
    out = []
    for path in sample_images():
        det = p.predict_batch([load_image(path)], SCORE, TOP_K).results[0]
        out.append({'boxes': det.boxes.tolist(), 'classes': det.classes.tolist(),
                    'shape': list(det.image_size) if len(det) else None})
    return out


def check(body: bytes, expect: dict) -> str:
    """'' when the response is a correct answer for that image, else what is wrong."""
    try:
        doc = json.loads(body)
        (res,) = doc['results']
        dets = res['detections']
    except (ValueError, KeyError, TypeError) as exc:
        return f'bad JSON shape: {type(exc).__name__}'
    if len(dets) != len(expect['boxes']):
        return f'{len(dets)} detections, expected {len(expect["boxes"])}'
    for d, box, cls in zip(dets, expect['boxes'], expect['classes']):
        # Batched inference may round differently in the last bits: allow 1 px.
        if d['class_id'] != cls or max(abs(a - b) for a, b in zip(d['box'], box)) > 1:
            return 'detections differ from the direct Predictor result'
        if not d.get('mask', {}).get('counts'):
            return 'missing RLE mask'
    return ''


def run_phase(port: int, clients: int, per_client: int, jpegs: list, expect: list,
              max_seconds: float) -> dict:
    lat, statuses, problems, batch_sizes = [], {}, [], {}
    lost = 0
    lock = threading.Lock()
    stop_at = time.monotonic() + max_seconds

    def client(cid: int):
        nonlocal lost
        conn = http.client.HTTPConnection('127.0.0.1', port, timeout=300)
        for j in range(per_client):
            if time.monotonic() > stop_at:
                break
            k = (cid * per_client + j) % len(jpegs)
            t0 = time.perf_counter()
            try:
                conn.request('POST', '/v1/detect', body=jpegs[k],
                             headers={'Content-Type': 'image/jpeg'})
                resp = conn.getresponse()
                body = resp.read()
                status = resp.status
            except (OSError, http.client.HTTPException):
                with lock:
                    lost += 1
                conn.close()
                conn = http.client.HTTPConnection('127.0.0.1', port, timeout=300)
                continue
            dt = time.perf_counter() - t0
            with lock:
                statuses[status] = statuses.get(status, 0) + 1
                if status == 200:
                    lat.append(dt)
                    problem = check(body, expect[k])
                    if problem:
                        problems.append(problem)
                    else:
                        for b in json.loads(body)['timing']['batch_sizes']:
                            batch_sizes[b] = batch_sizes.get(b, 0) + 1
                elif status == 503:
                    msg = json.loads(body)['error']['message']
                    problems.extend([] if 'overloaded' in msg else [f'503 without overload: {msg}'])
        conn.close()

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    ok = statuses.get(200, 0)
    answered = sum(statuses.values())
    out = {'clients': clients, 'requests_per_client': per_client, 'sent': answered + lost,
           'ok': ok - len([p for p in problems if not p.startswith('503')]),
           'status_counts': {str(k): v for k, v in sorted(statuses.items())},
           'status_503': statuses.get(503, 0),
           'errors': answered - ok - statuses.get(503, 0), 'lost': lost,
           'malformed': len([p for p in problems if not p.startswith('503')]),
           'problems': sorted(set(problems))[:10], 'wall_s': round(wall, 2),
           'req_per_s': round(ok / wall, 3) if wall else None,
           'batch_sizes_seen': {str(k): v for k, v in sorted(batch_sizes.items())}}
    if lat:
        s = summarize(lat)
        out['latency_ms'] = {k: round(s[k], 1) for k in ('p50_ms', 'p90_ms', 'p99_ms', 'mean_ms',
                                                         'max_ms', 'min_ms')}
    return out


MEMORY_CEILING_MB = 1500  # docs/serving.md: baseline + budget stays under this with default flags


def hostile_phase(server: Server, jpegs: list, expect: list, max_seconds: float) -> dict:
    """Every bomb three times at once, while 4 clients send normal requests."""
    from yolact_deploy.serve.hostile import bombs, json_of_pngs
    files = {name: (data, 'application/octet-stream') for name, data in bombs().items()}
    files['JSON of 16 PNGs 6000x6000'] = (json_of_pngs(16, 6000), 'application/json')
    results, lock = [], threading.Lock()

    def send(name, data, ctype):
        conn = http.client.HTTPConnection('127.0.0.1', server.port, timeout=300)
        try:
            conn.request('POST', '/v1/detect', body=data, headers={'Content-Type': ctype})
            resp = conn.getresponse()
            status, body = resp.status, resp.read()
            msg = json.loads(body)['error']['message'] if status != 200 else ''
        except (OSError, http.client.HTTPException) as exc:
            status, msg = None, f'lost: {exc}'
        finally:
            conn.close()
        with lock:
            results.append({'bomb': name, 'status': status, 'message': msg[:160]})

    with server.watch() as mem:
        normal = {}
        t_normal = threading.Thread(target=lambda: normal.update(
            run_phase(server.port, 4, 6, jpegs, expect, max_seconds)))
        t_normal.start()
        threads = [threading.Thread(target=send, args=(name, data, ctype))
                   for _ in range(3) for name, (data, ctype) in files.items()]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        t_normal.join()
    refused = [r for r in results if r['status'] in (413, 503)]
    by_bomb = {}
    for r in results:
        by_bomb.setdefault(r['bomb'], []).append(r['status'])
    return {'bombs_sent': len(results), 'bombs_refused': len(refused), 'statuses': by_bomb,
            'messages': sorted({r['message'] for r in results})[:8], 'normal': normal,
            'memory': mem}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--weights', help='ONNX model (default: bundled model or lively lite0_256)')
    p.add_argument('--workdir', default=os.path.join(tempfile.gettempdir(), 'yolact_serve_load'))
    p.add_argument('--clients', default='1,4,16')
    p.add_argument('--requests', type=int, default=64,
                   help='requests per phase, spread over its clients (default 64)')
    p.add_argument('--max-seconds', type=float, default=300, help='time cap per phase')
    p.add_argument('--threads', type=int, default=2, help='onnxruntime threads in the server')
    p.add_argument('--max-batch', type=int, default=8)
    p.add_argument('--max-queue', type=int, default=64)
    p.add_argument('--batch-window-ms', type=float, default=10)
    p.add_argument('--overload-queue', type=int, default=4, help='queue bound of the overload run')
    p.add_argument('--out', default=os.path.join(ROOT, 'benchmarks', 'results', 'serve_load.json'))
    args = p.parse_args(argv)
    os.makedirs(args.workdir, exist_ok=True)
    model, model_name = model_path(args.workdir, args.weights)
    jpegs = [open(path, 'rb').read() for path in sample_images()]
    expect = expected_results(model)
    facts = machine_facts()
    report = {'tool': 'benchmarks/serve_load.py', 'yolact_deploy': __version__,
              'created': time.strftime('%Y-%m-%dT%H:%M:%S%z'), 'machine': facts,
              'model': {'name': model_name, 'backend': 'onnxruntime', 'file': os.path.basename(model)},
              'workload': {'images': [os.path.basename(x) for x in sample_images()],
                           'image_sizes': [list(load_image(x).shape[:2]) for x in sample_images()],
                           'upload': 'image/jpeg, one image per request, keep-alive connections',
                           'score_threshold': SCORE, 'top_k': TOP_K, 'masks': 'COCO RLE'},
              'phases': []}

    server = Server(model, args.threads, args.max_batch, args.max_queue, args.batch_window_ms)
    report['server'] = {'args': server.args, 'health': server.get('/health')}
    try:
        run_phase(server.port, 1, 2, jpegs, expect, 120)  # warm-up (not recorded)
        for clients in [int(c) for c in args.clients.split(',')]:
            per_client = max(1, args.requests // clients)
            print(f'phase: {clients} clients x {per_client} requests ...', file=sys.stderr, flush=True)
            with server.watch() as mem:
                phase = run_phase(server.port, clients, per_client, jpegs, expect, args.max_seconds)
            phase['memory'] = mem
            phase['queue_bound'] = args.max_queue
            report['phases'].append(phase)
            print(f'  {phase["req_per_s"]} req/s, p50 {phase.get("latency_ms", {}).get("p50_ms")} ms, '
                  f'p99 {phase.get("latency_ms", {}).get("p99_ms")} ms, errors {phase["errors"]}, '
                  f'503 {phase["status_503"]}, lost {phase["lost"]}, malformed {phase["malformed"]}',
                  file=sys.stderr, flush=True)
        report['server']['health_after'] = server.get('/health')
    finally:
        report['server']['exit_code'] = server.stop()

    # Overload: a queue bound below the number of clients -> 503s, and only those.
    print(f'overload: 16 clients x 2 requests, queue bound {args.overload_queue}, batch 1 ...',
          file=sys.stderr, flush=True)
    server = Server(model, args.threads, 1, args.overload_queue, 0)
    try:
        # At the bound: as many clients as the queue holds (batch 1, so one more runs): no 503.
        with server.watch() as mem:
            at_bound = run_phase(server.port, args.overload_queue, 4, jpegs, expect, args.max_seconds)
        at_bound.update(queue_bound=args.overload_queue, memory=mem)
        with server.watch() as mem:
            over = run_phase(server.port, 16, 2, jpegs, expect, args.max_seconds)
        over.update(queue_bound=args.overload_queue, memory=mem)
        over['health_after'] = server.get('/health')
    finally:
        over['exit_code'] = server.stop()
    report['at_queue_bound'] = at_bound
    report['overload'] = over
    print(f'hostile: bombs x3 each alongside 4 clients of normal traffic ...', file=sys.stderr,
          flush=True)
    server = Server(model, args.threads, args.max_batch, args.max_queue, args.batch_window_ms)
    try:
        hostile = hostile_phase(server, jpegs, expect, args.max_seconds)
        hostile['health_after'] = server.get('/health')
    finally:
        hostile['exit_code'] = server.stop()
    hostile['memory_ceiling_mb'] = MEMORY_CEILING_MB
    report['hostile'] = hostile
    report['machine']['loadavg_end'] = list(os.getloadavg())

    good = all(ph['lost'] == 0 and ph['malformed'] == 0 and ph['errors'] == 0 and
               ph['status_503'] == 0 for ph in report['phases'])
    good = good and over['lost'] == 0 and over['malformed'] == 0 and over['errors'] == 0 and \
        over['status_503'] > 0
    at_bound_ok = at_bound['status_503'] == 0 and at_bound['lost'] == 0 and \
        at_bound['malformed'] == 0 and at_bound['errors'] == 0
    hostile_ok = hostile['bombs_refused'] == hostile['bombs_sent'] and \
        hostile['normal']['ok'] == hostile['normal']['sent'] and \
        hostile['memory']['rss_peak_mb'] < MEMORY_CEILING_MB
    good = good and at_bound_ok and hostile_ok
    report['verdict'] = {
        'no_lost_or_malformed_responses': all(ph['lost'] == 0 and ph['malformed'] == 0
                                              for ph in report['phases'] + [over]),
        'no_503_within_queue_bound': all(ph['status_503'] == 0 for ph in report['phases']),
        '503_past_queue_bound_only_as_overload': over['status_503'] > 0 and not over['problems'],
        'no_503_at_queue_bound': at_bound_ok,
        'bombs_refused_service_kept_serving_under_ceiling': hostile_ok,
        'clean_sigterm_exit': report['server']['exit_code'] == 0 and over['exit_code'] == 0 and
                              hostile['exit_code'] == 0,
        'all_good': good}
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, 'w') as f:
        json.dump(report, f, indent=1)
        f.write('\n')
    print(f'wrote {args.out}: {json.dumps(report["verdict"])}', file=sys.stderr)
    return 0 if good else 1


if __name__ == '__main__':
    sys.exit(main())
