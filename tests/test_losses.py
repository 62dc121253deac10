"""clip_loss and siglip_loss against reference computations written with explicit loops."""

from __future__ import annotations

import math

import pytest
import torch

from mmsearch.train.losses import clip_loss, siglip_loss


def _random_pair(n: int, d: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    img = torch.nn.functional.normalize(torch.randn(n, d, generator=g, dtype=torch.float64), dim=1)
    txt = torch.nn.functional.normalize(torch.randn(n, d, generator=g, dtype=torch.float64), dim=1)
    return img, txt


def _dot(a: torch.Tensor, b: torch.Tensor) -> float:
    return sum(float(x) * float(y) for x, y in zip(a, b, strict=True))


def _reference_clip(img, txt, scale, positives=None):
    n = img.shape[0]
    logits = [[scale * _dot(img[i], txt[j]) for j in range(n)] for i in range(n)]
    pos = positives if positives is not None else [[i == j for j in range(n)] for i in range(n)]

    def direction(get, is_pos):
        total = 0.0
        for i in range(n):
            row = [get(i, j) for j in range(n)]
            m = max(row)
            log_z = m + math.log(sum(math.exp(v - m) for v in row))
            targets = [j for j in range(n) if is_pos(i, j)]
            total += -sum(row[j] - log_z for j in targets) / len(targets)
        return total / n

    i2t = direction(lambda i, j: logits[i][j], lambda i, j: pos[i][j])
    t2i = direction(lambda i, j: logits[j][i], lambda i, j: pos[j][i])
    return (i2t + t2i) / 2


def _reference_siglip(img, txt, scale, bias):
    n = img.shape[0]
    total = 0.0
    for i in range(n):
        for j in range(n):
            z = 1.0 if i == j else -1.0
            logit = scale * _dot(img[i], txt[j]) + bias
            total += -math.log(1.0 / (1.0 + math.exp(-z * logit)))
    return total / n


@pytest.mark.parametrize("seed,n,scale", [(0, 5, 10.0), (1, 8, 30.0), (2, 3, 1.0)])
def test_clip_loss_matches_reference(seed: int, n: int, scale: float) -> None:
    img, txt = _random_pair(n, 16, seed)
    got = clip_loss(img, txt, torch.tensor(scale, dtype=torch.float64))
    assert float(got) == pytest.approx(_reference_clip(img, txt, scale), abs=1e-5)


def test_clip_loss_with_extra_positives_matches_reference() -> None:
    img, txt = _random_pair(6, 8, 3)
    pos = [[i == j for j in range(6)] for i in range(6)]
    pos[0][3] = pos[3][0] = pos[2][5] = True
    got = clip_loss(img, txt, 12.0, positives=torch.tensor(pos))
    assert float(got) == pytest.approx(_reference_clip(img, txt, 12.0, pos), abs=1e-5)
    # an identity positives matrix is the plain loss
    eye = torch.eye(6, dtype=torch.bool)
    assert float(clip_loss(img, txt, 12.0, positives=eye)) == pytest.approx(
        float(clip_loss(img, txt, 12.0)), abs=1e-9
    )


def test_clip_loss_is_lower_for_matching_pairs() -> None:
    img, txt = _random_pair(8, 16, 4)
    assert float(clip_loss(img, img, 20.0)) < float(clip_loss(img, txt, 20.0))


@pytest.mark.parametrize("seed,n,scale,bias", [(0, 5, 10.0, -10.0), (1, 7, 3.0, 0.5)])
def test_siglip_loss_matches_reference(seed: int, n: int, scale: float, bias: float) -> None:
    img, txt = _random_pair(n, 12, seed)
    got = siglip_loss(
        img, txt, torch.tensor(scale, dtype=torch.float64), torch.tensor(bias, dtype=torch.float64)
    )
    assert float(got) == pytest.approx(_reference_siglip(img, txt, scale, bias), abs=1e-5)


def test_losses_have_gradients_for_temperature() -> None:
    img, txt = _random_pair(4, 8, 5)
    scale = torch.tensor(5.0, dtype=torch.float64, requires_grad=True)
    bias = torch.tensor(-2.0, dtype=torch.float64, requires_grad=True)
    (clip_loss(img, txt, scale) + siglip_loss(img, txt, scale, bias)).backward()
    assert scale.grad is not None and bias.grad is not None
    assert float(scale.grad) != 0.0 and float(bias.grad) != 0.0
