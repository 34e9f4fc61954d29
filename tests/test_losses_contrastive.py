"""InfoNCE against a direct numpy computation; MoCo queue order/wrap-around; momentum update."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from depthcli.errors import DepthcliError
from depthcli.losses import InfoNCELoss, MoCoQueue, momentum_update


def test_info_nce_matches_numpy_log_softmax():
    generator = torch.Generator().manual_seed(0)
    q = F.normalize(torch.randn(3, 5, generator=generator), dim=1).requires_grad_()
    k = F.normalize(torch.randn(3, 5, generator=generator), dim=1).requires_grad_()
    queue = F.normalize(torch.randn(4, 5, generator=generator), dim=1)
    loss = InfoNCELoss(temperature=0.2)(q, k, queue)

    qn, kn, queue_n = (t.detach().double().numpy() for t in (q, k, queue))
    expected = 0.0
    for i in range(3):
        logits = np.concatenate([[qn[i] @ kn[i]], queue_n @ qn[i]]) / 0.2
        expected += -(logits[0] - np.log(np.exp(logits).sum()))
    assert np.isclose(loss.item(), expected / 3, rtol=1e-5)

    loss.backward()
    assert q.grad is not None and q.grad.abs().sum() > 0
    assert k.grad is None  # keys come from the momentum encoder: no gradient


def test_queue_ring_buffer_order_and_wrap_around():
    queue = MoCoQueue(dim=2, size=4)
    batches = [torch.tensor([[1.0, 1.0], [2.0, 2.0]]), torch.tensor([[3.0, 3.0], [4.0, 4.0]])]
    batches.append(torch.tensor([[5.0, 5.0], [6.0, 6.0]]))
    for batch in batches[:2]:
        queue.enqueue(batch)
    torch.testing.assert_close(queue.queue[:, 0], torch.tensor([1.0, 2.0, 3.0, 4.0]))
    assert int(queue.pointer) == 0
    queue.enqueue(batches[2])  # overwrites the oldest two
    torch.testing.assert_close(queue.queue[:, 0], torch.tensor([5.0, 6.0, 3.0, 4.0]))
    assert int(queue.pointer) == 2
    assert set(dict(queue.named_buffers())) == {"queue", "pointer"}  # saved with the job's state


def test_queue_starts_with_unit_vectors_and_rejects_mismatched_batch():
    queue = MoCoQueue(dim=8, size=6)
    torch.testing.assert_close(queue.queue.norm(dim=1), torch.ones(6))
    with pytest.raises(DepthcliError, match="multiple of the batch size 4"):
        queue.enqueue(torch.ones(4, 8))


def test_momentum_update_value():
    online, target = nn.Linear(3, 2), nn.Linear(3, 2)
    before = [p.detach().clone() for p in target.parameters()]
    momentum_update(online, target, m=0.9)
    for o, t, t0 in zip(online.parameters(), target.parameters(), before, strict=True):
        torch.testing.assert_close(t, 0.9 * t0 + 0.1 * o.detach())
    with pytest.raises(ValueError):
        momentum_update(nn.Linear(3, 2), nn.Sequential(nn.Linear(3, 2), nn.Linear(2, 2)))
