"""Per-example losses shared by the attacks and the training objectives (one home for each formula).

With P = softmax(p) and Q = softmax(q) over the last dimension::

    cross_entropy_per_example(z, y)_i = -log softmax(z_i)_{y_i}
    kl_divergence_per_example(p, q)_i = KL(P_i || Q_i) = sum_c P_ic (log P_ic - log Q_ic)

Both return one value per row (no batch reduction); callers reduce.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def cross_entropy_per_example(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """``-log softmax(logits)[y]`` per row."""
    return F.cross_entropy(logits, labels, reduction="none")


def kl_divergence_per_example(logits_p: torch.Tensor, logits_q: torch.Tensor) -> torch.Tensor:
    """``KL(softmax(logits_p) || softmax(logits_q))`` per row, computed in float32 from log-probabilities."""
    log_p = F.log_softmax(logits_p.float(), dim=-1)
    log_q = F.log_softmax(logits_q.float(), dim=-1)
    return (log_p.exp() * (log_p - log_q)).sum(dim=-1)
