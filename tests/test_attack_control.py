"""The attack registry, and cancellation/progress inside any attack (the GUI's Cancel and progress bars)."""

from __future__ import annotations

import pytest
import torch

from caw_core.attacks.control import AttackCancelled
from caw_core.attacks.registry import ATTACKS, attack_images, parse_attack
from caw_core.attacks.pgd import default_step_size


@pytest.mark.parametrize("name", ["pgd50", "cw50", "aa50", "aafare50"])
def test_should_stop_cancels_inside_the_attack_within_one_forward(tiny_model, blob_batch, name):
    images = blob_batch[0]
    with torch.no_grad():
        labels = tiny_model(images).argmax(dim=1)  # all correct, and a radius too small to fool any: a long run
    counts = []

    def stop_after_three() -> bool:
        return len(counts) >= 3

    with pytest.raises(AttackCancelled):
        attack_images(name, tiny_model, images, labels, 1e-5, should_stop=stop_after_three,
                      on_forward=counts.append)
    assert counts == [1, 2, 3]  # progress reported per forward; none ran after the request


def test_a_stop_requested_before_the_start_runs_nothing(tiny_model, blob_batch):
    images, labels = blob_batch
    counts = []
    with pytest.raises(AttackCancelled):
        attack_images("clean", tiny_model, images, labels, 1 / 255, should_stop=lambda: True, on_forward=counts.append)
    assert counts == []


def test_progress_counts_every_forward_and_the_result_is_unchanged(tiny_model, blob_batch):
    images, labels = blob_batch
    counts = []
    plain = attack_images("pgd5", tiny_model, images, labels, 4 / 255, seed=3)
    watched = attack_images("pgd5", tiny_model, images, labels, 4 / 255, seed=3, should_stop=lambda: False,
                            on_forward=counts.append)
    assert torch.equal(plain, watched)
    assert counts == list(range(1, len(counts) + 1)) and 1 <= len(counts) <= ATTACKS["pgd"].forwards(5, 4)


def test_registry_specs_parse_and_carry_the_one_step_rule():
    assert parse_attack("pgd") == ("pgd", 10) and parse_attack("aafare") == ("aafare", 100)
    attack = parse_attack("pgd20")
    assert attack.key == "pgd20" and attack.spec is ATTACKS["pgd"]
    assert attack.step_size(8 / 255, "linf") == default_step_size(8 / 255, 20, "linf")
    assert parse_attack("aa").step_size(1 / 255, "linf") is None  # APGD sets its own step
    assert "5 restarts" in ATTACKS["aafare"].label
    with pytest.raises(ValueError, match="unknown attack"):
        parse_attack("fgsm")
