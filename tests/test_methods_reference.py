"""Each baseline's loss equals its reference implementation's, computed independently on fixed tensors.

Every reference formula below is written from reading the reference code (plain torch ops mirroring the
cited lines), not from caw's modules; caw's objective is then run through its public interface
(``build_objective(...).losses(StepInputs(...))``) on the same tiny towers and compared.

References (file @ commit):

* TeCoA / TGA-ZSR -- zhyblue424/TGA-ZSR ``TGA-ZSR.py`` @ 035eaad97002baae6bf92e4c99faf0d34d5870ee
  (``criterion``; ``main.sh`` @ b34d46f3670cf35aa48f59d62653dd750ad349a1 runs TeCoA as ``--Alpha 0 --Beta 0``)
  and ``attention_map.py`` @ 014b5da32f713c4f2ea38dd88d5fe4e39bee1f82 (``attention_map``, text branch).
* FT-Adv -- zhyblue424/TGA-ZSR ``FT.py`` @ 9c6412b8fb1f72256be529b01a543d8c6e176a48 (``train``) with
  ``models/model.py`` @ c9550239c3489be137749271639d550e1c0c941b (``multiGPU_CLIP``).
* PMG-AFT -- serendipity1122/Pre-trained-Model-Guided-Fine-Tuning-for-Zero-Shot-Adversarial-Robustness
  ``PMG_AFT.py`` @ 4baf55d2b03085d13f4606f6ff60105dfd8320b4 (``train``, ``multiGPU_CLIP``).
* FARE -- chs20/RobustVLM ``train/adversarial_training_clip.py`` @ d257a534cbdf507a407193f55a2d64bb8d3a2de0
  (``compute_loss``, ``l2``).
* CAW -- no code exists; the formula of the paper (arXiv 2510.02913) as summarised in ANCHORS.md.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from caw_core.methods import build_objective
from caw_core.methods.base import StepInputs

LOGIT_SCALE = 100.0  # CLIP ViT-B/32's exp(logit_scale), clamped at ln(100) in every reference
LABELS = torch.tensor([0, 2, 2, 1])  # a repeated class: the in-batch contrastive loss must treat it as the reference


class TinyTower(nn.Module):
    """(B, 3, 4, 4) images -> a 2x2 grid of projected patch tokens (B, 4, D) and a pooled CLS embedding (B, D)."""

    image_size = 8  # attention maps are upsampled to this size

    def __init__(self, seed: int, dim: int = 6):
        super().__init__()
        generator = torch.Generator().manual_seed(seed)
        self.patch = nn.Parameter(torch.randn(12, dim, generator=generator))
        self.cls = nn.Parameter(torch.randn(dim, dim, generator=generator))

    def forward(self, images: torch.Tensor, return_tokens: bool = False):
        patches = images.unfold(2, 2, 2).unfold(3, 2, 2).permute(0, 2, 3, 1, 4, 5).reshape(len(images), 4, 12)
        tokens = patches @ self.patch
        pooled = torch.tanh(tokens).mean(dim=1) @ self.cls
        return (pooled, tokens) if return_tokens else pooled


@pytest.fixture
def towers():
    generator = torch.Generator().manual_seed(0)
    images = torch.rand(4, 3, 4, 4, generator=generator)
    adv = (images + 0.1 * torch.randn(images.shape, generator=generator)).clamp(0, 1)
    head = F.normalize(torch.randn(3, 6, generator=generator), dim=-1)
    target, original = TinyTower(seed=1), TinyTower(seed=2)
    return target, original, head, images, adv


def caw_loss(name, towers, **options):
    target, original, head, images, adv = towers
    return build_objective(name, **options).losses(StepInputs(target, original, head, images, adv, LABELS))


def test_tecoa_is_the_cross_entropy_over_the_class_prompts(towers):
    target, _, head, _, adv = towers
    # TGA-ZSR.py train/criterion: output = normalize(adv_features) @ (logit_scale * text_features).t();
    # loss_TeCoA = CrossEntropyLoss(output, target); --Alpha 0 --Beta 0 zero the attention terms
    output = F.normalize(target(adv), dim=1) @ (LOGIT_SCALE * head).t()
    reference = nn.CrossEntropyLoss()(output, LABELS)
    assert caw_loss("tecoa", towers).total.item() == pytest.approx(reference.item(), rel=1e-5)


def test_ft_adv_is_clip_symmetric_in_batch_contrastive_loss(towers):
    target, _, head, _, adv = towers
    # models/model.py multiGPU_CLIP: img_embed (unit) @ scale_text_embed.t() and its transpose
    img_embed = F.normalize(target(adv), dim=-1)
    scale_text_embed = LOGIT_SCALE * head
    output = img_embed @ scale_text_embed.t()
    text_logits = scale_text_embed @ img_embed.t()
    # FT.py train: ground_truth = arange(B); loss = (CE(output[:, target], gt) + CE(text_logits[target, :], gt)) / 2
    ground_truth = torch.arange(len(LABELS))
    loss_img = nn.CrossEntropyLoss()(output[:, LABELS], ground_truth)
    loss_txt = nn.CrossEntropyLoss()(text_logits[LABELS, :], ground_truth)
    reference = (loss_img + loss_txt) / 2
    terms = caw_loss("ft-adv", towers)
    assert terms.total.item() == pytest.approx(reference.item(), rel=1e-5)
    assert terms.total.item() != pytest.approx(caw_loss("tecoa", towers).total.item(), rel=1e-3)


def pmg_aft_reference(towers):
    target, original, head, images, adv = towers
    # PMG_AFT.py multiGPU_CLIP: both embeddings re-normalised, so the logits are raw cosines (no logit scale)
    def multi_gpu_clip(model, x):
        return F.normalize(model(x), dim=-1) @ F.normalize(LOGIT_SCALE * head, dim=-1).t()

    output, output_ori, output_clean = multi_gpu_clip(target, adv), multi_gpu_clip(original, adv), \
        multi_gpu_clip(target, images)
    criterion_kl = nn.KLDivLoss(reduction="sum")
    loss_advori = criterion_kl(F.log_softmax(output_ori, dim=1), F.softmax(output, dim=1))
    loss_advclean = criterion_kl(F.log_softmax(output_clean, dim=1), F.softmax(output, dim=1))
    return nn.CrossEntropyLoss()(output, LABELS) + loss_advclean + loss_advori, loss_advori, loss_advclean


def test_pmg_aft_reproduces_the_reference_direction_scale_and_reduction(towers):
    reference, kl_ori, kl_clean = pmg_aft_reference(towers)
    terms = caw_loss("pmg-aft", towers)
    assert terms.total.item() == pytest.approx(reference.item(), rel=1e-5)
    assert terms.parts["kl_original"].item() == pytest.approx(kl_ori.item(), rel=1e-4)
    assert terms.parts["kl_clean"].item() == pytest.approx(kl_clean.item(), rel=1e-4)
    # the gradient too: in the reference only T's adversarial distribution is pulled in the first term
    target = towers[0]
    (grad_reference,) = torch.autograd.grad(pmg_aft_reference(towers)[0], target.patch)
    (grad_caw,) = torch.autograd.grad(caw_loss("pmg-aft", towers).total, target.patch)
    assert torch.allclose(grad_caw, grad_reference, rtol=1e-4, atol=1e-7)


def test_pmg_aft_attack_maximises_the_raw_cosine_cross_entropy(towers):
    target, original, head, images, _ = towers
    attack = build_objective("pmg-aft").attack_target(target, original, head, images, LABELS)
    # PMG_AFT.py attack_pgd: loss = criterion(output, target) on multiGPU_CLIP's raw-cosine output
    cosines = F.normalize(target(images), dim=-1) @ head.t()
    assert torch.allclose(attack.forward(images), cosines, atol=1e-6)


def test_pmg_aft_caw_v1_variant_is_caws_earlier_formula(towers):
    target, original, head, images, adv = towers
    z_adv, z_clean, z_orig = (LOGIT_SCALE * F.normalize(f, dim=-1) @ head.t()
                              for f in (target(adv), target(images), original(adv)))

    def kl(p_logits, q_logits):  # KL(P || Q) per example, batch mean
        p = F.softmax(p_logits, dim=1)
        return (p * (F.log_softmax(p_logits, dim=1) - F.log_softmax(q_logits, dim=1))).sum(1).mean()

    expected = F.cross_entropy(z_adv, LABELS) + kl(z_orig, z_adv) + kl(z_clean, z_adv)
    assert caw_loss("pmg-aft", towers, variant="caw-v1").total.item() == pytest.approx(expected.item(), rel=1e-5)


def tga_attention_map(text_features, model, images, image_size):
    """attention_map.py, text branch, line by line (encode_image returns the (B, 1+N, D) projected tokens)."""
    cls, tokens = model(images, return_tokens=True)
    image_features = torch.cat([cls.unsqueeze(1), tokens], dim=1)
    image_features = image_features / image_features.norm(dim=1, keepdim=True)
    img_spatial_feat = image_features[:, 1:, :]
    am = img_spatial_feat @ text_features.unsqueeze(-1)
    am = (am - am.min(1, keepdim=True)[0]) / (am.max(1, keepdim=True)[0] - am.min(1, keepdim=True)[0])
    side = int(am.shape[1] ** 0.5)
    am = am.reshape(am.shape[0], side, side, -1).permute(0, 3, 1, 2)
    return torch.nn.functional.interpolate(am, image_size, mode="bilinear").view(len(images), -1)


def test_tga_zsr_reproduces_the_reference_maps_and_loss(towers):
    target, original, head, images, adv = towers
    text_features = head[LABELS, :]
    size = original.image_size
    # TGA-ZSR.py train: attack_tar (T on x'), clean_ori (O on x), clean_tar (T on x)
    attack_tar = tga_attention_map(text_features, target, adv, size)
    clean_ori = tga_attention_map(text_features, original, images, size)
    clean_tar = tga_attention_map(text_features, target, images, size)
    output = F.normalize(target(adv), dim=1) @ (LOGIT_SCALE * head).t()
    # criterion, Distance_metric 'l2', Alpha 0.08, Beta 0.05
    loss_tecoa = nn.CrossEntropyLoss()(output, LABELS)
    loss_am1 = torch.mean(torch.norm(attack_tar - clean_ori, dim=1, p=2))
    loss_am2 = torch.mean(torch.norm(clean_tar - clean_ori, dim=1, p=2))
    reference = loss_tecoa + 0.08 * loss_am1 + 0.05 * loss_am2
    terms = caw_loss("tga-zsr", towers)
    assert terms.parts["attn_adv"].item() == pytest.approx(loss_am1.item(), rel=1e-5)
    assert terms.parts["attn_clean"].item() == pytest.approx(loss_am2.item(), rel=1e-5)
    assert terms.total.item() == pytest.approx(reference.item(), rel=1e-5)
    weighted = caw_loss("tga-zsr", towers, refine_weight=1.0, constraint_weight=2.0)
    assert weighted.total.item() == pytest.approx((loss_tecoa + loss_am1 + 2 * loss_am2).item(), rel=1e-5)


def test_fare_is_the_squared_embedding_distance_to_the_original_clean_embedding(towers):
    target, original, _, images, adv = towers
    # adversarial_training_clip.py: embedding_orig = model_orig(data); loss = l2(embedding_adv, embedding_orig):
    # F.mse_loss(out, targets, reduction='none').sum(dim=1), then torch.mean (output_normalize False)
    reference = torch.mean(F.mse_loss(target(adv), original(images), reduction="none").sum(dim=1))
    assert caw_loss("fare", towers).total.item() == pytest.approx(reference.item(), rel=1e-5)


def caw_paper_loss(towers, alpha=1.0, beta=1.0):
    target, original, head, images, adv = towers
    z_adv = LOGIT_SCALE * F.normalize(target(adv), dim=-1) @ head.t()
    z_orig_clean = LOGIT_SCALE * F.normalize(original(images), dim=-1) @ head.t()
    p_adv = F.softmax(z_adv, dim=1)
    kl = (p_adv * (F.log_softmax(z_adv, dim=1) - F.log_softmax(z_orig_clean, dim=1))).sum(1)
    l_ca = (kl * (1 - p_adv[torch.arange(len(LABELS)), LABELS])).mean()  # the weight is part of the formula
    l_reg = (target(adv) - original(adv)).norm(dim=1).mean()
    return F.cross_entropy(z_adv, LABELS) + alpha * l_ca + beta * l_reg


def test_caw_is_its_formula_as_written_gradient_through_the_weight_included(towers):
    target, original, head, images, adv = towers
    # class embeddings close together, so that P_adv is not saturated at logit scale 100 and the weight matters
    head = F.normalize(head[:1] + 0.02 * head, dim=-1)
    towers = target, original, head, images, adv
    expected = caw_paper_loss(towers, alpha=2.0, beta=0.5)
    terms = caw_loss("caw", towers, alpha=2.0, beta=0.5)
    assert terms.total.item() == pytest.approx(expected.item(), rel=1e-4)  # L_Reg's smoothing: 1e-4 absolute
    (grad_formula,) = torch.autograd.grad(caw_paper_loss(towers, alpha=2.0, beta=0.5), target.patch)
    (grad_caw,) = torch.autograd.grad(caw_loss("caw", towers, alpha=2.0, beta=0.5).total, target.patch)
    assert torch.allclose(grad_caw, grad_formula, rtol=1e-3, atol=1e-5)
    (grad_detached,) = torch.autograd.grad(caw_loss("caw", towers, alpha=2.0, beta=0.5, detach_weight=True).total,
                                           target.patch)
    assert not torch.allclose(grad_detached, grad_formula, rtol=1e-3, atol=1e-5)
