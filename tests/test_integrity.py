"""Evaluation integrity: PGD with more steps and restarts never does worse; masked gradients are caught."""

from __future__ import annotations

import pytest
import torch

from caw_core.attacks.pgd import pgd
from caw_core.integrity import GradientMaskingError, assert_no_gradient_masking, check_gradient_masking, \
    robust_accuracy


@pytest.fixture(scope="module")
def trained_tiny():
    """caw-test-tiny after a few clean SGD steps on unit-blobs: clean accuracy well above chance."""
    import blobs
    from caw_core.data import load_dataset
    from caw_core.models import load_model

    torch.manual_seed(0)
    model = load_model("caw-test-tiny")
    model.set_classes(blobs.CLASSES, ["a {} picture."])
    data = load_dataset(blobs.NAME, split="train", image_size=32).data
    images, labels = data.tensors
    optimizer = torch.optim.SGD(model.image_encoder.parameters(), lr=0.05, momentum=0.9)
    model.image_encoder.train()
    for step in range(15):
        batch = slice((step * 48) % 144, (step * 48) % 144 + 48)
        loss = torch.nn.functional.cross_entropy(model(images[batch]), labels[batch])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    test = load_dataset(blobs.NAME, split="test", image_size=32).data
    x, y = test.tensors
    return model, x[:24], y[:24]


@pytest.mark.slow
def test_an_honest_model_passes_and_more_effort_does_not_do_worse(trained_tiny):
    model, images, labels = trained_tiny
    # unit-blobs are separated by half the pixel range, so a radius that matters is large
    report = assert_no_gradient_masking(model, images, labels, eps=64 / 255)
    assert report.clean_acc > 0.6  # the check is about a model that has something to lose
    assert report.weak_robust_acc < report.clean_acc  # and an attack that takes some of it
    assert report.strong_robust_acc <= report.weak_robust_acc + report.tolerance
    assert report.strong_robust_acc <= report.clean_acc
    assert report.unbounded_acc <= report.chance + report.tolerance
    assert report.strong == {"steps": 50, "restarts": 2} and report.weak == {"steps": 10, "restarts": 1}


def test_an_attack_that_gets_worse_with_effort_is_flagged(trained_tiny):
    model, images, labels = trained_tiny

    def broken(model, images, labels, *, steps, **kwargs):  # long runs "diverge" back to the clean image
        return images if steps >= 50 else pgd(model, images, labels, steps=steps, **kwargs)

    weak = robust_accuracy(model, images, labels, 64 / 255, steps=10, attack=broken)
    report = check_gradient_masking(model, images, labels, eps=64 / 255, attack=broken, unbounded=False)
    assert report.strong_robust_acc == pytest.approx(report.clean_acc) and report.weak_robust_acc == weak
    assert weak < report.clean_acc - 0.1, "the weak attack must do something for this test to mean anything"
    assert not report.ok and "more attack effort helped" in report.failures[0]
    with pytest.raises(GradientMaskingError, match="more attack effort helped"):
        assert_no_gradient_masking(model, images, labels, eps=64 / 255, attack=broken, unbounded=False)


def test_zero_gradients_are_flagged_by_the_unbounded_attack(trained_tiny):
    model, images, labels = trained_tiny

    class Quantised(torch.nn.Module):  # a 'defence' whose rounding kills the input gradient
        def __init__(self):
            super().__init__()
            self.inner = model

        def forward(self, x):
            return self.inner(torch.round(x * 16) / 16)

    report = check_gradient_masking(Quantised(), images, labels, eps=64 / 255, weak_steps=5, strong_steps=10)
    assert any("unbounded attack" in failure for failure in report.failures), report.failures
