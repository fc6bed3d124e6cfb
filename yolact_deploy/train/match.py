"""Prior matching (the official SSD/YOLACT rule).

Each prior takes the ground truth it overlaps most; each ground truth additionally claims its
best prior (greedily, best pair first) so no object goes untrained. Overlap >= ``pos_thresh``:
positive (label + 1); < ``neg_thresh``: background (0); in between: neutral (-1, ignored). A prior
that would be background or neutral but lies mostly inside a crowd region (intersection over the
prior's area > ``crowd_thresh``) becomes neutral, so crowds neither train nor punish detections.
"""
from __future__ import annotations

import torch

from ..ops.boxes import encode, jaccard, point_form


def match(truths: torch.Tensor, labels: torch.Tensor, priors: torch.Tensor, *,
          pos_thresh: float = 0.5, neg_thresh: float = 0.4, crowd_boxes: torch.Tensor = None,
          crowd_thresh: float = 0.7):
    """truths ``[G, 4]`` relative x1y1x2y2 (non-crowd), labels ``[G]`` (0..C-1), priors ``[P, 4]``
    cx,cy,w,h. Returns (loc_t ``[P, 4]`` encoded offsets, conf_t ``[P]`` long in {-1, 0, 1..C},
    idx_t ``[P]`` index of the matched truth)."""
    num_priors = priors.shape[0]
    decoded = point_form(priors)
    if truths.shape[0] == 0:
        conf = torch.zeros(num_priors, dtype=torch.long, device=priors.device)
        best_overlap = torch.zeros(num_priors, device=priors.device)
        idx = torch.zeros(num_priors, dtype=torch.long, device=priors.device)
        loc = torch.zeros_like(priors)
    else:
        overlaps = jaccard(truths, decoded)                         # [G, P]
        best_overlap, idx = overlaps.max(0)
        work = overlaps.clone()
        for _ in range(truths.shape[0]):
            best_prior_overlap, best_prior = work.max(1)
            j = best_prior_overlap.argmax()
            i = best_prior[j]
            work[:, i] = -1
            work[j, :] = -1
            best_overlap[i] = 2
            idx[i] = j
        conf = labels[idx] + 1
        conf[best_overlap < pos_thresh] = -1
        conf[best_overlap < neg_thresh] = 0
        loc = encode(truths[idx], priors)
    if crowd_boxes is not None and crowd_boxes.shape[0] and crowd_thresh < 1:
        crowd_overlap = jaccard(decoded, crowd_boxes, iscrowd=True).max(1).values
        conf[(conf <= 0) & (crowd_overlap > crowd_thresh)] = -1
    return loc, conf, idx
