"""Random and adversarial inputs of the plugin tests (CPU, ONNX Runtime and TensorRT), seeded per case."""
import numpy as np

from yolact_deploy.ops.dcn import output_size


def dcn_case(i: int, dtype=np.float32):
    """Case i: shapes, per-axis attributes and inputs; i % 10 picks the adversarial kind."""
    rng = np.random.default_rng(10_000 + i)
    kind = i % 10
    while True:
        dg, cpg, batch = (int(v) for v in rng.integers(1, 4, size=3))
        kh, kw, sh, sw = (int(v) for v in rng.integers(1, 4, size=4))
        ph, pw = (int(v) for v in rng.integers(0, 3, size=2))
        dh, dw = (int(v) for v in rng.integers(1, 3, size=2))
        h, w = (int(v) for v in rng.integers(1, 10, size=2))
        ho, wo = output_size(h, kh, sh, ph, dh), output_size(w, kw, sw, pw, dw)
        if ho >= 1 and wo >= 1:
            break
    c = dg * cpg
    taps = kh * kw
    x = rng.standard_normal((batch, c, h, w))
    off_shape = (batch, 2 * dg * taps, ho, wo)
    mask = rng.random((batch, dg * taps, ho, wo))
    if kind == 5:      # far outside the input, both signs
        off = rng.choice([-1, 1], size=off_shape) * 10.0 ** rng.uniform(3, 6, size=off_shape)
    elif kind == 6:    # whole-pixel offsets: corners exactly on the grid and on the edges
        off = rng.integers(-max(h, w) - 2, max(h, w) + 3, size=off_shape).astype(np.float64)
    elif kind == 7:    # positions at -1, 0, H-1, H (+- a hair): the inside test's boundaries
        edges = np.array([-1.0, 0.0, h - 1.0, float(h), w - 1.0, float(w)])
        target = rng.choice(edges, size=off_shape) + rng.choice([0.0, 1e-6, -1e-6], size=off_shape)
        off = target - rng.integers(-2, 3, size=off_shape)
    elif kind == 8:    # zero mask
        off = rng.standard_normal(off_shape) * 2
        mask = np.zeros_like(mask)
    elif kind == 9:    # mixed scales, masks outside [0, 1]
        off = rng.standard_normal(off_shape) * rng.choice([0.5, 5.0, 500.0], size=off_shape)
        mask = rng.standard_normal(mask.shape) * 2
    else:
        off = rng.standard_normal(off_shape) * 2
    if dtype == np.float16:
        off = np.clip(off, -6e4, 6e4)   # stay finite: non-finite offsets are outside the contract
    attrs = dict(kernel_size=(kh, kw), stride=(sh, sw), padding=(ph, pw), dilation=(dh, dw))
    return x.astype(dtype), off.astype(dtype), mask.astype(dtype), attrs


def random_boxes(rng, batch, n):
    xy = rng.random((batch, n, 2))
    wh = rng.random((batch, n, 2)) * 0.5
    return np.concatenate([xy, xy + wh], -1)


def nms_case(i: int, dtype=np.float32):
    """Case i: inputs and attributes; i % 12 picks the adversarial kind."""
    rng = np.random.default_rng(20_000 + i)
    kind = i % 12
    batch = int(rng.integers(1, 4))
    n = int(rng.integers(1, 70))
    c = int(rng.integers(1, 7))
    boxes = random_boxes(rng, batch, n)
    logits = rng.standard_normal((batch, n, c + 1)) * 2
    scores = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    scores = scores[..., 1:]
    attrs = dict(conf_thresh=float(rng.choice([0.0, 0.05, 0.1, 0.3])),
                 iou_threshold=float(rng.choice([0.3, 0.5, 0.7, rng.uniform(0.05, 0.95)])),
                 top_k=int(rng.integers(1, n + 10)), max_detections=int(rng.integers(1, 40)),
                 cross_class=bool(rng.random() < 0.3), second_threshold=bool(rng.random() < 0.2))
    if kind == 1:      # no detection above the threshold
        attrs['conf_thresh'] = float(scores.max()) if rng.random() < 0.5 else 1.0
    elif kind == 2:    # every box overlapping: identical, or all nested around one centre
        if rng.random() < 0.5:
            boxes = np.broadcast_to(boxes[:, :1], boxes.shape).copy()
        else:
            half = rng.uniform(0.2, 0.3, size=(batch, n, 1))
            boxes = np.concatenate([0.5 - half, 0.5 - half, 0.5 + half, 0.5 + half], -1)
    elif kind == 3:    # equal scores: a few levels, or all the same
        levels = np.array([0.5]) if rng.random() < 0.3 else np.array([0.0, 0.25, 0.5, 0.75])
        scores = rng.choice(levels, size=scores.shape)
    elif kind == 4:    # K larger than the candidates
        attrs['max_detections'] = n * c + int(rng.integers(1, 20))
        attrs['top_k'] = n + int(rng.integers(0, 5))
    elif kind == 5:    # zero-area boxes (0/0 IoU is NaN in the reference, which suppresses)
        zero = rng.random((batch, n)) < 0.5
        boxes[zero, 2] = boxes[zero, 0]
    elif kind == 6:    # cross-class with tied best classes
        attrs['cross_class'] = True
        scores = rng.choice(np.array([0.1, 0.4, 0.4, 0.7]), size=scores.shape)
    elif kind == 7:    # scores exactly at the threshold, and -0.0
        attrs['conf_thresh'] = 0.25
        scores = rng.choice(np.array([0.25, 0.5, -0.0, 0.0, 0.2500001]), size=scores.shape)
    elif kind == 8:    # second threshold on
        attrs['second_threshold'] = True
        attrs['conf_thresh'] = 0.1
    elif kind == 9:    # larger lists: more priors and classes than the rest
        n, c = int(rng.integers(150, 400)), int(rng.integers(8, 30))
        boxes = random_boxes(rng, batch, n)
        scores = rng.random((batch, n, c)) ** 4
        attrs['top_k'] = int(rng.integers(20, 200))
        attrs['max_detections'] = int(rng.integers(20, 120))
    elif kind == 10:   # raw, partly negative scores
        scores = rng.standard_normal(scores.shape)
    elif kind == 11:   # NaN scores (the prior drops out) and NaN box coordinates
        scores[rng.random(scores.shape) < 0.05] = np.nan
        boxes[rng.random(boxes.shape) < 0.05] = np.nan
    return boxes.astype(dtype), scores.astype(dtype), attrs


