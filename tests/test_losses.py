"""Loss values against hand computation, and the objectives' behaviour on a tiny CLIP."""

from __future__ import annotations

import math

import pytest
import torch

from caw_core.methods import METHODS, build_objective, confidence_aware_loss, feature_alignment_loss
from caw_core.methods.base import StepInputs
from caw_core.losses import kl_divergence_per_example
from caw_core.methods.tga_zsr import text_guided_attention
from caw_core.models import frozen_image_encoder

LOGITS_ADV = [[2.0, 0.0], [0.0, 1.0]]
LOGITS_CLEAN = [[0.0, 0.0], [1.0, 0.0]]
LABELS = [0, 1]


def softmax(row):
    exps = [math.exp(v) for v in row]
    return [e / sum(exps) for e in exps]


def kl(p, q):
    return sum(pi * math.log(pi / qi) for pi, qi in zip(p, q))


def hand_caw(direction):
    total = 0.0
    for adv, clean, y in zip(LOGITS_ADV, LOGITS_CLEAN, LABELS):
        p_adv, p_clean = softmax(adv), softmax(clean)
        divergence = kl(p_adv, p_clean) if direction == "adv_clean" else kl(p_clean, p_adv)
        total += divergence * (1 - p_adv[y])
    return total / len(LABELS)


@pytest.mark.parametrize("direction, expected", [("adv_clean", 0.08168), ("clean_adv", 0.08800)])
def test_confidence_aware_loss_matches_hand_computation(direction, expected):
    value = confidence_aware_loss(torch.tensor(LOGITS_ADV), torch.tensor(LOGITS_CLEAN), torch.tensor(LABELS),
                                  kl=direction).item()
    assert value == pytest.approx(hand_caw(direction), rel=1e-5)
    assert value == pytest.approx(expected, abs=1e-4)


def test_confidence_aware_loss_rejects_unknown_direction():
    with pytest.raises(ValueError, match="adv_clean"):
        confidence_aware_loss(torch.zeros(1, 2), torch.zeros(1, 2), torch.zeros(1, dtype=torch.long), kl="both")


def test_detached_weight_is_a_constant_factor():
    adv = torch.tensor(LOGITS_ADV, requires_grad=True)
    clean, labels = torch.tensor(LOGITS_CLEAN), torch.tensor(LABELS)
    (grad_detached,) = torch.autograd.grad(confidence_aware_loss(adv, clean, labels, detach_weight=True), adv)
    (grad_through,) = torch.autograd.grad(confidence_aware_loss(adv, clean, labels, detach_weight=False), adv)
    # reference: weight computed once and treated as a constant
    weight = (1 - torch.softmax(adv.detach(), 1).gather(1, labels.view(-1, 1)).squeeze(1))
    log_p = torch.log_softmax(adv, 1)
    manual = ((log_p.exp() * (log_p - torch.log_softmax(clean, 1))).sum(1) * weight).mean()
    (grad_manual,) = torch.autograd.grad(manual, adv)
    assert torch.allclose(grad_detached, grad_manual, atol=1e-6)
    assert not torch.allclose(grad_detached, grad_through, atol=1e-4)


def test_feature_alignment_is_the_mean_euclidean_norm_not_squared():
    target = torch.tensor([[3.0, 4.0], [0.0, 0.0]])
    original = torch.tensor([[0.0, 0.0], [1.0, 0.0]])
    assert feature_alignment_loss(target, original).item() == pytest.approx(3.0, abs=2e-4)  # (5 + 1) / 2; squared: 13


def test_kl_divergence_per_example_matches_hand_computation():
    p, q = torch.tensor(LOGITS_ADV), torch.tensor(LOGITS_CLEAN)
    per_example = [kl(softmax(a), softmax(b)) for a, b in zip(LOGITS_ADV, LOGITS_CLEAN)]
    assert kl_divergence_per_example(p, q).tolist() == pytest.approx(per_example, rel=1e-5)


def test_text_guided_attention_is_min_max_normalised_and_upsampled():
    cls, tokens = torch.randn(2, 8), torch.randn(2, 16, 8)
    head = torch.nn.functional.normalize(torch.randn(3, 8), dim=-1)
    maps = text_guided_attention(cls, tokens, head, torch.tensor([0, 2]), size=32)
    assert maps.shape == (2, 32, 32)
    assert maps.min().item() >= 0.0 and maps.max().item() <= 1.0 + 1e-6
    coarse = text_guided_attention(cls, tokens, head, torch.tensor([0, 2]), size=4)
    assert torch.allclose(coarse.flatten(1).amin(1), torch.zeros(2), atol=1e-6)
    assert torch.allclose(coarse.flatten(1).amax(1), torch.ones(2), atol=1e-6)


def _inputs(model, images, adv, labels):
    return StepInputs(model.image_encoder, frozen_image_encoder(model), model.text_head, images, adv, labels)


@pytest.mark.parametrize("name", list(METHODS))
def test_objectives_backpropagate_into_the_image_tower_only(name, tiny_model, blob_batch):
    images, labels = blob_batch
    adv = (images + 0.02 * torch.randn_like(images)).clamp(0, 1)
    batch = _inputs(tiny_model, images, adv, labels)
    terms = build_objective(name).losses(batch)
    assert torch.isfinite(terms.total)
    terms.total.backward()
    image_grads = [p.grad for p in tiny_model.image_encoder.parameters()]
    assert any(g is not None and g.abs().sum() > 0 for g in image_grads)
    assert all(p.grad is None for p in tiny_model.text_parameters())
    assert all(p.grad is None for p in batch.original.parameters())


def test_regularisers_vanish_when_target_equals_original_and_input_is_clean(tiny_model, blob_batch):
    images, labels = blob_batch
    batch = _inputs(tiny_model, images, images.clone(), labels)
    caw = build_objective("caw").losses(batch)
    assert caw.parts["reg"].item() == pytest.approx(0.0, abs=1e-5)
    assert caw.parts["ca"].item() == pytest.approx(0.0, abs=1e-5)
    pmg = build_objective("pmg-aft").losses(batch)
    assert pmg.parts["kl_original"].item() == pytest.approx(0.0, abs=1e-5)
    assert pmg.parts["kl_clean"].item() == pytest.approx(0.0, abs=1e-5)
    tga = build_objective("tga-zsr").losses(batch)
    assert tga.parts["attn_adv"].item() == pytest.approx(0.0, abs=1e-4)
    assert build_objective("fare").losses(batch).total.item() == pytest.approx(0.0, abs=1e-6)


def test_caw_total_is_ce_plus_weighted_terms(tiny_model, blob_batch):
    images, labels = blob_batch
    adv = (images + 0.05 * torch.randn_like(images)).clamp(0, 1)
    batch = _inputs(tiny_model, images, adv, labels)
    with torch.no_grad():
        batch.original.visual.conv1.weight.add_(0.05)  # make O differ from T
    terms = build_objective("caw", alpha=2.0, beta=0.5).losses(batch)
    expected = terms.parts["ce"] + 2.0 * terms.parts["ca"] + 0.5 * terms.parts["reg"]
    assert terms.total.item() == pytest.approx(expected.item(), rel=1e-5)
    assert terms.parts["reg"].item() > 0 and terms.parts["ca"].item() > 0
    ce_only = build_objective("caw", ablation="ce").losses(batch)
    assert set(ce_only.parts) == {"ce"}
    assert ce_only.total.item() == pytest.approx(terms.parts["ce"].item(), rel=1e-5)


@pytest.mark.parametrize("options, message", [({"alpha": -1}, "alpha"), ({"kl": "sideways"}, "kl"),
                                             ({"ablation": "ce+xx"}, "ablation")])
def test_caw_rejects_bad_options(options, message):
    with pytest.raises(ValueError, match=message):
        build_objective("caw", **options)


def test_unknown_method_suggests_a_close_name():
    with pytest.raises(ValueError, match="pmg-aft"):
        build_objective("pmg_aftt")


def test_feature_alignment_gradient_fades_when_features_coincide():
    original = torch.randn(4, 8)
    target = (original + 1e-7 * torch.randn(4, 8)).requires_grad_(True)  # round-off-sized difference
    (grad,) = torch.autograd.grad(feature_alignment_loss(target, original), target)
    assert grad.norm(dim=1).max() < 0.01  # a plain norm would give unit-size rows / batch = 0.25
    far = (original + torch.randn(4, 8)).requires_grad_(True)
    (grad_far,) = torch.autograd.grad(feature_alignment_loss(far, original), far)
    assert torch.allclose(grad_far.norm(dim=1), torch.full((4,), 0.25), atol=1e-3)
