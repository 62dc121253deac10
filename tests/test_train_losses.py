"""Training losses beyond tests/test_losses.py: SigLIP with extra positives, the positives of a
batch from its ids, and the gradients of the learnable temperature and bias against
straightforward reference computations."""

from __future__ import annotations

import math

import pytest
import torch

from mmsearch.train.loop import contrastive_loss
from mmsearch.train.losses import clip_loss, pair_positives, siglip_loss

from torch_threads import one_torch_thread  # noqa: F401 (autouse: one torch thread)


def _pair(n: int, d: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    img = torch.nn.functional.normalize(torch.randn(n, d, generator=g, dtype=torch.float64), dim=1)
    txt = torch.nn.functional.normalize(torch.randn(n, d, generator=g, dtype=torch.float64), dim=1)
    return img, txt


def _ref_siglip(img, txt, scale, bias, pos):
    n = img.shape[0]
    total = 0.0
    for i in range(n):
        for j in range(n):
            z = 1.0 if pos[i][j] else -1.0
            logit = scale * float(img[i] @ txt[j]) + bias
            total += math.log1p(math.exp(-z * logit))
    return total / n


def _ref_clip(img, txt, scale):
    n = img.shape[0]
    sims = [[scale * float(img[i] @ txt[j]) for j in range(n)] for i in range(n)]

    def ce(rows):
        return sum(-rows[i][i] + math.log(sum(math.exp(v) for v in rows[i])) for i in range(n)) / n

    cols = [[sims[j][i] for j in range(n)] for i in range(n)]
    return (ce(sims) + ce(cols)) / 2


def test_siglip_with_extra_positives_matches_reference() -> None:
    img, txt = _pair(6, 8, 0)
    pos = [[i == j for j in range(6)] for i in range(6)]
    pos[1][4] = pos[4][1] = True
    got = siglip_loss(img, txt, 7.0, -3.0, positives=torch.tensor(pos))
    assert float(got) == pytest.approx(_ref_siglip(img, txt, 7.0, -3.0, pos), abs=1e-9)


def test_pair_positives_marks_shared_media_or_caption() -> None:
    media = torch.tensor([10, 11, 10, 12])
    captions = torch.tensor([1, 2, 3, 2])
    pos = pair_positives(media, captions)
    expected = torch.tensor(
        [[1, 0, 1, 0], [0, 1, 0, 1], [1, 0, 1, 0], [0, 1, 0, 1]], dtype=torch.bool
    )
    assert torch.equal(pos, expected)


def test_contrastive_loss_with_distinct_ids_is_the_plain_loss() -> None:
    img, txt = _pair(5, 8, 1)
    ids = torch.arange(5)
    scale = torch.tensor(9.0, dtype=torch.float64)
    got = contrastive_loss("clip", img, txt, scale, None, ids, ids + 100)
    assert float(got) == pytest.approx(float(clip_loss(img, txt, scale)), abs=1e-12)
    bias = torch.tensor(-2.0, dtype=torch.float64)
    got = contrastive_loss("siglip", img, txt, scale, bias, ids, ids + 100)
    assert float(got) == pytest.approx(float(siglip_loss(img, txt, scale, bias)), abs=1e-12)


def test_learnable_temperature_gradient_matches_finite_difference() -> None:
    """d loss / d log-scale (CLIP's parametrisation) against the reference loss."""
    img, txt = _pair(5, 8, 2)
    log_scale = torch.tensor(math.log(12.0), dtype=torch.float64, requires_grad=True)
    clip_loss(img, txt, log_scale.exp()).backward()
    eps = 1e-6
    up = _ref_clip(img, txt, math.exp(math.log(12.0) + eps))
    down = _ref_clip(img, txt, math.exp(math.log(12.0) - eps))
    assert log_scale.grad is not None
    assert float(log_scale.grad) == pytest.approx((up - down) / (2 * eps), rel=1e-5)


def test_siglip_bias_and_scale_gradients_match_finite_difference() -> None:
    img, txt = _pair(4, 6, 3)
    pos = [[i == j for j in range(4)] for i in range(4)]
    scale = torch.tensor(5.0, dtype=torch.float64, requires_grad=True)
    bias = torch.tensor(-1.5, dtype=torch.float64, requires_grad=True)
    siglip_loss(img, txt, scale, bias).backward()
    eps = 1e-6
    d_bias = (
        _ref_siglip(img, txt, 5.0, -1.5 + eps, pos) - _ref_siglip(img, txt, 5.0, -1.5 - eps, pos)
    ) / (2 * eps)
    d_scale = (
        _ref_siglip(img, txt, 5.0 + eps, -1.5, pos) - _ref_siglip(img, txt, 5.0 - eps, -1.5, pos)
    ) / (2 * eps)
    assert bias.grad is not None and scale.grad is not None
    assert float(bias.grad) == pytest.approx(d_bias, rel=1e-5)
    assert float(scale.grad) == pytest.approx(d_scale, rel=1e-5)
