"""Contrastive losses for image–text training: CLIP's InfoNCE and SigLIP's pairwise sigmoid.

Embeddings are expected L2-normalised; ``logit_scale`` is the multiplier itself
(``model.logit_scale.exp()``), as CLIP-style models return it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mmsearch._lazy import require

if TYPE_CHECKING:  # pragma: no cover
    from torch import Tensor


def clip_loss(
    image_emb: Tensor,
    text_emb: Tensor,
    logit_scale: Tensor | float,
    *,
    positives: Tensor | None = None,
) -> Tensor:
    """Symmetric InfoNCE: the mean of the image→text and text→image cross-entropies.

    Row ``i`` of ``image_emb`` pairs with row ``i`` of ``text_emb``. ``positives``
    (optional, bool ``(n_images, n_texts)``, diagonal true) marks further true
    pairs in the batch, e.g. two captions that describe the same content; each
    side's target is then spread evenly over its positives instead of treating
    those pairs as negatives.
    """
    torch = require("torch")
    F = torch.nn.functional
    logits = logit_scale * image_emb @ text_emb.t()
    if positives is None:
        labels = torch.arange(logits.shape[0], device=logits.device)
        return (F.cross_entropy(logits, labels) + F.cross_entropy(logits.t(), labels)) / 2
    pos = positives.to(logits.dtype)
    i2t = -(pos / pos.sum(1, keepdim=True) * F.log_softmax(logits, dim=1)).sum(1).mean()
    pos_t = pos.t()
    t2i = -(pos_t / pos_t.sum(1, keepdim=True) * F.log_softmax(logits.t(), dim=1)).sum(1).mean()
    return (i2t + t2i) / 2


def siglip_loss(
    image_emb: Tensor,
    text_emb: Tensor,
    logit_scale: Tensor | float,
    logit_bias: Tensor | float,
    *,
    positives: Tensor | None = None,
) -> Tensor:
    """SigLIP's pairwise sigmoid loss (Zhai et al., 2023).

    Every (image, text) pair is a binary problem, label +1 on the diagonal and -1
    elsewhere: ``-sum_ij log sigmoid(z_ij * (t * x_i·y_j + b)) / n`` with ``n``
    the batch size, as in the paper. ``positives`` (optional, bool
    ``(n_images, n_texts)``) marks further pairs with label +1.
    """
    torch = require("torch")
    F = torch.nn.functional
    logits = logit_scale * image_emb @ text_emb.t() + logit_bias
    n = logits.shape[0]
    if positives is None:
        positives = torch.eye(n, device=logits.device, dtype=torch.bool)
    labels = 2 * positives.to(logits.dtype) - 1
    return -F.logsigmoid(labels * logits).sum() / n


def pair_positives(media_ids: Tensor, caption_ids: Tensor) -> Tensor:
    """Bool ``(n, n)``: pairs ``i`` and ``j`` share their media item or their caption.

    Such pairs are positives of each other in a batch: an image with two captions,
    or two images with the same caption, must not be pushed apart.
    """
    same_media = media_ids[:, None] == media_ids[None, :]
    same_caption = caption_ids[:, None] == caption_ids[None, :]
    return same_media | same_caption
