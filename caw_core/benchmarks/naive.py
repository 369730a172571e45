"""The reference repositories' way of computing the same training step, kept for measurement only.

``caw-core bench --mode naive`` times this against the optimised step of
:mod:`caw_core.train`; both compute the same losses on the same batch (the
tests check it), so the ratio of their times and memory is the price of the
reference code's habits (ANCHORS.md, "Known traps"), all of them at once:

* the text head is re-encoded every step (tokenise + text-tower forward);
* the frozen original tower O is a plain copy whose parameters still require
  grad, and it runs with autograd on: its activations are kept for a backward
  that only fills O's unused ``.grad``;
* every forward pass is separate (x and x' are never concatenated);
* PGD calls ``loss.backward()``, which also computes the gradients of T's
  parameters, then zeroes them.

This is a composite of those habits, not a replica of any one repository.
The loss formulas are imported from :mod:`caw_core.methods`; only the order
and grouping of the forward passes differ.
"""

from __future__ import annotations

import copy
from typing import Callable, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from caw_core.attacks.pgd import eval_mode, project, random_start_in_ball, validate_budget
from caw_core.methods import CAW, FARE, FTAdv, PMGAFT, TGAZSR, LossTerms, Objective, TeCoA
from caw_core.methods.caw import ABLATIONS, confidence_aware_loss, feature_alignment_loss
from caw_core.methods.ft_adv import contrastive_loss
from caw_core.methods.pmg_aft import pmg_aft_loss
from caw_core.methods.tga_zsr import text_guided_attention, tga_zsr_loss
from caw_core.models.zero_shot import ImageEncoder, ZeroShotCLIP, logits_from_features


def unfrozen_copy(encoder: ImageEncoder) -> ImageEncoder:
    """The references' "original model": a deep copy in eval mode whose parameters still require grad."""
    original = copy.deepcopy(encoder).eval()
    for p in original.parameters():
        p.requires_grad_(True)
    return original


def encode_text_head(model: ZeroShotCLIP, classnames: Sequence[str], templates: Sequence[str]) -> torch.Tensor:
    """(C, D) class head, tokenised and encoded afresh (no cache, autograd on), as the references do per step."""
    tokens = model.tokenizer([t.format(c) for c in classnames for t in templates]).to(model.device)
    features = F.normalize(model.clip.encode_text(tokens).float(), dim=-1)
    return F.normalize(features.view(len(classnames), len(templates), -1).mean(dim=1), dim=-1)


def backward_pgd(forward: Callable[[torch.Tensor], torch.Tensor], model: nn.Module, images: torch.Tensor,
                 labels: torch.Tensor, loss_fn, eps: float, step_size: float, steps: int,
                 generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """linf PGD with a random start, differentiating by ``loss.backward()`` (parameter grads included), then
    ``model.zero_grad()``; draws the same random start as :func:`caw_core.attacks.pgd.pgd`."""
    validate_budget(eps, step_size, steps, "linf")
    images = images.detach()
    delta = random_start_in_ball(images, eps, "linf", generator)
    delta = (images + delta).clamp(0, 1) - images
    with eval_mode(model):
        for _ in range(steps):
            delta.requires_grad_(True)
            loss_fn(forward(images + delta), labels).sum().backward()
            grad = delta.grad.detach()
            model.zero_grad(set_to_none=True)
            delta = project(delta.detach() + step_size * grad.sign(), eps, "linf")
            delta = (images + delta).clamp(0, 1) - images
    return (images + delta).detach()


def _ce(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(logits.float(), labels)


def _caw(objective: CAW, target, original, head, images, adv, labels) -> LossTerms:
    o = objective.options
    use_ca, use_reg = ABLATIONS[o.ablation]
    feat_adv = target(adv)
    logits_adv = logits_from_features(feat_adv, head)
    ce = _ce(logits_adv, labels)
    total, parts = ce, {"ce": ce.detach()}
    if use_ca:
        logits_orig = logits_from_features(original(images), head)
        ca = confidence_aware_loss(logits_adv, logits_orig, labels, o.kl, o.detach_weight)
        total, parts["ca"] = total + o.alpha * ca, ca.detach()
    if use_reg:
        feat_orig_adv = original(adv)
        if o.reg_space == "normalized":
            feat_adv, feat_orig_adv = F.normalize(feat_adv, dim=-1), F.normalize(feat_orig_adv, dim=-1)
        reg = feature_alignment_loss(feat_adv, feat_orig_adv)
        total, parts["reg"] = total + o.beta * reg, reg.detach()
    return LossTerms(total, parts, logits_adv=logits_adv.detach())


def _tecoa(objective: TeCoA, target, original, head, images, adv, labels) -> LossTerms:
    logits_adv = logits_from_features(target(adv), head)
    ce = _ce(logits_adv, labels)
    return LossTerms(ce, {"ce": ce.detach()}, logits_adv=logits_adv.detach())


def _ft_adv(objective: FTAdv, target, original, head, images, adv, labels) -> LossTerms:
    logits_adv = logits_from_features(target(adv), head)
    loss = contrastive_loss(logits_adv, labels)
    return LossTerms(loss, {"contrastive": loss.detach()}, logits_adv=logits_adv.detach())


def _pmg_aft(objective: PMGAFT, target, original, head, images, adv, labels) -> LossTerms:
    return pmg_aft_loss(target(adv), target(images), original(adv), head, labels, objective.options)


def _tga_zsr(objective: TGAZSR, target, original, head, images, adv, labels) -> LossTerms:
    size = original.image_size
    feat_clean, tokens_clean = target(images, return_tokens=True)
    feat_adv, tokens_adv = target(adv, return_tokens=True)
    cls_orig, tokens_orig = original(images, return_tokens=True)
    logits_clean, logits_adv = logits_from_features(feat_clean, head), logits_from_features(feat_adv, head)
    attn_orig = text_guided_attention(cls_orig, tokens_orig, head, labels, size)
    attn_adv = text_guided_attention(feat_adv, tokens_adv, head, labels, size)
    attn_clean = text_guided_attention(feat_clean, tokens_clean, head, labels, size)
    total, parts = tga_zsr_loss(logits_adv, attn_adv, attn_clean, attn_orig, labels, objective.options)
    return LossTerms(total, parts, logits_adv=logits_adv.detach(), logits_clean=logits_clean.detach())


def _fare(objective: FARE, target, original, head, images, adv, labels) -> LossTerms:
    feat_adv = target(adv)
    loss = objective.embedding_loss(feat_adv, original(images))
    return LossTerms(loss, {"fare": loss.detach()}, logits_adv=logits_from_features(feat_adv.detach(), head))


NAIVE_LOSSES = {CAW: _caw, FTAdv: _ft_adv, TeCoA: _tecoa, PMGAFT: _pmg_aft, TGAZSR: _tga_zsr, FARE: _fare}


def naive_losses(objective: Objective, target: nn.Module, original: nn.Module, head: torch.Tensor,
                 images: torch.Tensor, adv: torch.Tensor, labels: torch.Tensor) -> LossTerms:
    """``objective``'s loss with one forward per input and O under autograd."""
    for cls in type(objective).__mro__:
        if cls in NAIVE_LOSSES:
            return NAIVE_LOSSES[cls](objective, target, original, head, images, adv, labels)
    raise ValueError(f"no naive loss for method {objective.name!r}")


def naive_adversarial_losses(objective: Objective, model: ZeroShotCLIP, original: ImageEncoder,
                             classnames: Sequence[str], templates: Sequence[str], images: torch.Tensor,
                             labels: torch.Tensor, *, eps: float, step_size: float, steps: int,
                             generator: Optional[torch.Generator] = None) -> LossTerms:
    """The reference-style counterpart of :func:`caw_core.train.adversarial_losses` (linf, fp32 or autocast by
    the caller): text head re-encoded, attack by ``backward()``, then :func:`naive_losses`."""
    target = model.image_encoder
    head = encode_text_head(model, classnames, templates)
    attack = objective.attack_target(target, original, head, images, labels)
    adv = backward_pgd(attack.forward, target, images, attack.labels, attack.loss_fn, eps, step_size, steps,
                       generator)
    target.train()
    return naive_losses(objective, target, original, head, images, adv, labels)
