"""PGD: the DESIGN.md contract (ball, box, loss ascent, untouched parameters, modes)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from caw_core.attacks.pgd import pgd


@pytest.mark.parametrize("norm, eps", [("linf", 8 / 255), ("l2", 0.5)])
def test_adversarial_images_stay_in_the_ball_and_the_box(tiny_model, blob_batch, norm, eps):
    images, labels = blob_batch
    adv = pgd(tiny_model, images, labels, eps=eps, step_size=eps / 4, steps=5, norm=norm)
    delta = (adv - images).flatten(1)
    size = delta.abs().amax(1) if norm == "linf" else delta.norm(dim=1)
    assert (size <= eps + 1e-5).all()
    assert adv.min() >= 0 and adv.max() <= 1
    assert (size > 0).any()


def test_pgd_raises_the_loss(tiny_model, blob_batch):
    images, labels = blob_batch
    adv = pgd(tiny_model, images, labels, eps=8 / 255, step_size=2 / 255, steps=10)
    with torch.no_grad():
        clean_loss = F.cross_entropy(tiny_model(images), labels)
        adv_loss = F.cross_entropy(tiny_model(adv), labels)
    assert adv_loss > clean_loss + 1e-3


def test_parameters_and_their_grads_are_untouched(tiny_model, blob_batch):
    images, labels = blob_batch
    before = {n: p.detach().clone() for n, p in tiny_model.named_parameters()}
    pgd(tiny_model, images, labels, eps=4 / 255, step_size=1 / 255, steps=3)
    for name, param in tiny_model.named_parameters():
        assert param.grad is None, name
        assert torch.equal(param, before[name]), name


def test_existing_grads_are_not_modified(tiny_model, blob_batch):
    images, labels = blob_batch
    F.cross_entropy(tiny_model(images), labels).backward()
    grads = {n: p.grad.clone() for n, p in tiny_model.named_parameters() if p.grad is not None}
    pgd(tiny_model, images, labels, eps=4 / 255, step_size=1 / 255, steps=2)
    for name, param in tiny_model.named_parameters():
        if name in grads:
            assert torch.equal(param.grad, grads[name]), name


class ModeRecorder(torch.nn.Module):
    def __init__(self, inner):
        super().__init__()
        self.inner, self.modes = inner, []

    def forward(self, x):
        self.modes.append(self.training)
        return self.inner(x)


def test_attack_runs_in_eval_mode_and_restores_train_mode(tiny_model, blob_batch):
    images, labels = blob_batch
    model = ModeRecorder(tiny_model).train()
    pgd(model, images, labels, eps=1 / 255, step_size=1 / 255, steps=2)
    assert model.modes == [False, False]
    assert model.training


def test_seeded_generator_makes_the_attack_reproducible(tiny_model, blob_batch):
    images, labels = blob_batch
    runs = [pgd(tiny_model, images, labels, 4 / 255, 1 / 255, 2, generator=torch.Generator().manual_seed(3))
            for _ in range(2)]
    assert torch.equal(runs[0], runs[1])


@pytest.mark.parametrize("kwargs, message", [({"eps": -0.1}, "eps"), ({"steps": 0}, "steps"),
                                            ({"norm": "l1"}, "norm"), ({"step_size": 0.0}, "step_size")])
def test_bad_budgets_are_refused(tiny_model, blob_batch, kwargs, message):
    images, labels = blob_batch
    args = dict(eps=1 / 255, step_size=1 / 255, steps=1, norm="linf") | kwargs
    with pytest.raises(ValueError, match=message):
        pgd(tiny_model, images, labels, **args)


class RowCounter(torch.nn.Module):
    def __init__(self, inner):
        super().__init__()
        self.inner, self.rows = inner, 0

    def forward(self, x):
        self.rows += len(x)
        return self.inner(x)


def test_stop_when_fooled_freezes_fooled_images_and_skips_them(tiny_model, blob_batch):
    images, labels = blob_batch
    full, early = RowCounter(tiny_model), RowCounter(tiny_model)
    plain = pgd(full, images, labels, 16 / 255, 4 / 255, 8, generator=torch.Generator().manual_seed(0))
    stopped = pgd(early, images, labels, 16 / 255, 4 / 255, 8, generator=torch.Generator().manual_seed(0),
                  stop_when_fooled=True)
    assert full.rows == len(images) * 8
    assert early.rows < full.rows  # fooled images left the batch
    with torch.no_grad():
        fooled_plain = (tiny_model(plain).argmax(1) != labels).sum()
        fooled_stopped = (tiny_model(stopped).argmax(1) != labels).sum()
    assert fooled_stopped >= fooled_plain
    assert ((stopped - images).abs().amax(dim=(1, 2, 3)) <= 16 / 255 + 1e-6).all()


# --- agreement with torchattacks, and l2 on confidently classified images --------------------------------------


class Linear(torch.nn.Module):
    """logits = scale * W x: a model whose confidence (and so its CE gradient's size) ``scale`` sets."""

    def __init__(self, scale: float, dtype: torch.dtype, classes: int = 5, size: int = 8):
        super().__init__()
        weight = torch.randn(classes, 3 * size * size, generator=torch.Generator().manual_seed(0), dtype=dtype)
        self.weight = torch.nn.Parameter(weight / weight.norm(dim=1, keepdim=True))
        self.scale = scale

    def forward(self, x):
        return self.scale * x.flatten(1) @ self.weight.t()


def _inputs(dtype):
    images = torch.rand(6, 3, 8, 8, generator=torch.Generator().manual_seed(1), dtype=dtype)
    return images, torch.tensor([0, 1, 2, 3, 4, 0])


@pytest.mark.parametrize("norm", ["l2", "linf"])
def test_pgd_matches_torchattacks_on_the_same_inputs(norm):
    torchattacks = pytest.importorskip("torchattacks")
    model = Linear(3.0, torch.float64)
    images, labels = _inputs(torch.float64)
    eps, step, steps = (1.0, 0.2, 10) if norm == "l2" else (8 / 255, 2 / 255, 10)
    reference_cls = torchattacks.PGDL2 if norm == "l2" else torchattacks.PGD
    reference = reference_cls(model, eps=eps, alpha=step, steps=steps, random_start=False)(images, labels)
    ours = pgd(model, images, labels, eps, step, steps, norm=norm, random_start=False)
    assert (ours - images).abs().max() > step / 2  # the attack moved
    torch.testing.assert_close(ours, reference, atol=1e-9, rtol=0)


def test_l2_pgd_does_not_stall_on_confidently_classified_images():
    """CE saturated at logit scale 100: the gradient's norm is ~1e-17, far below a fixed 1e-12 floor."""
    model = Linear(100.0, torch.float32)
    images, _ = _inputs(torch.float32)
    labels = model(images).argmax(dim=1)  # confidently correct
    images.requires_grad_(True)
    loss = F.cross_entropy(model(images), labels, reduction="sum")
    (grad,) = torch.autograd.grad(loss, images)
    norms = grad.flatten(1).norm(dim=1)
    tiny = (norms > 0) & (norms < 1e-12)  # the regime where a norm floor stalls the attack
    assert tiny.sum() >= 2, norms
    steps, step = 5, 0.2
    adv = pgd(model, images.detach(), labels, eps=10.0, step_size=step, steps=steps, norm="l2", random_start=False)
    moved = (adv - images.detach()).flatten(1).norm(dim=1)
    assert (moved[tiny] > 0.5 * steps * step).all(), moved  # each step has its full length (or the box stopped it)
