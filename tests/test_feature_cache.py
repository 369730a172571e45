"""--cache-original-features: the frozen tower's clean features computed once per image, same losses as without."""

from __future__ import annotations

import pytest
import torch

from caw_core.feature_cache import FILENAME, has_random_augmentation
from caw_core.train import Trainer, resume_config

# unit-blobs has 192 training images: batch 64 gives 3 steps per epoch, so 4 steps span 2 epochs.
EPOCHS_OF_STEPS = dict(batch_size=64, max_steps=4, save_every=3)


def losses(trainer) -> list[float]:
    return [r["loss"] for r in trainer.run() if r["event"] == "step"]


def rows_through_original(trainer) -> list:
    rows = []
    forward = trainer.original.forward

    def spy(images, *args, **kwargs):
        rows.append(len(images))
        return forward(images, *args, **kwargs)

    trainer.original.forward = spy
    return rows


@pytest.mark.parametrize("method", ["caw", "fare"])
def test_cached_and_uncached_training_give_the_same_losses_step_for_step(tiny_train_config, method):
    cached = Trainer(tiny_train_config(method=method, name="cached", **EPOCHS_OF_STEPS))
    plain = Trainer(tiny_train_config(method=method, name="plain", cache_original_features=False,
                                      **EPOCHS_OF_STEPS))
    assert cached.feature_cache is not None and plain.feature_cache is None
    assert losses(cached) == pytest.approx(losses(plain), rel=1e-5, abs=1e-6)


def test_each_clean_image_goes_through_the_original_tower_once(tiny_train_config):
    trainer = Trainer(tiny_train_config(**EPOCHS_OF_STEPS))
    rows = rows_through_original(trainer)
    steps = len(losses(trainer))
    # CAW runs O on x (for P_O(x)) and on x' (for L_Reg) every step; with the cache x only in the first epoch
    assert sum(rows) == steps * 64 + len(trainer.dataset)
    assert bool(trainer.feature_cache.filled.all())


def test_methods_that_never_run_the_original_on_clean_images_never_allocate_the_table(tiny_train_config):
    trainer = Trainer(tiny_train_config(method="tecoa", max_steps=2))
    losses(trainer)
    assert trainer.feature_cache is not None and not trainer.feature_cache.allocated


def test_a_resumed_run_reuses_the_saved_cache(tiny_train_config):
    whole = losses(Trainer(tiny_train_config(name="whole", **EPOCHS_OF_STEPS)))
    first = Trainer(tiny_train_config(name="split", **EPOCHS_OF_STEPS))
    head = []
    for record in first.run():
        if record["event"] == "step":
            head.append(record["loss"])
            if record["step"] == 3:
                first.request_stop()  # saves a checkpoint (and the cache) at the end of epoch 1
    assert len(head) == 3 and (first.run_dir / FILENAME).is_file()
    resumed = Trainer(resume_config(first.run_dir), resume=True)
    assert bool(resumed.feature_cache.filled.all())  # epoch 1 was done before the stop: nothing to recompute
    rows = rows_through_original(resumed)
    tail = losses(resumed)
    assert head + tail == pytest.approx(whole, rel=1e-5, abs=1e-6)
    assert sum(rows) == len(tail) * 64  # only the adversarial images


def test_a_cache_file_of_another_model_is_ignored(tiny_train_config):
    first = Trainer(tiny_train_config(name="other", max_steps=2))
    losses(first)
    config = resume_config(first.run_dir, max_steps=3)
    config.pretrained = "random"  # another identity for the same folder
    resumed = Trainer(config, resume=True)
    assert not bool(resumed.feature_cache.filled.any())


def test_random_augmentation_turns_the_cache_off_and_refuses_forcing_it():
    from torchvision import transforms as T

    class Data:
        transform = T.Compose([T.RandomHorizontalFlip(), T.ToTensor()])

    assert has_random_augmentation(Data())
    assert not has_random_augmentation(type("Plain", (), {"transform": T.Compose([T.ToTensor()])})())
    from caw_core.feature_cache import for_run

    assert for_run(None, Data(), 4, 2, {}, torch.device("cpu"), None, announce=False) is None
    with pytest.raises(ValueError, match="deterministic training transform"):
        for_run(True, Data(), 4, 2, {}, torch.device("cpu"), None, announce=False)


@pytest.mark.parametrize("method", ["caw", "fare"])
def test_bench_cache_mode_computes_the_optimized_losses(method):
    from caw_core.benchmarks.bench import BenchConfig, build_step

    config = BenchConfig(model="caw-test-tiny", batch_size=4, classes=5, device="cpu", threads=1, mode="cache")
    plain, cached = (build_step(config, method, mode, torch.device("cpu")) for mode in ("optimized", "cached"))
    for _ in range(2):  # the second step runs on moved weights: the cache must still hold O's features
        fast, slow = cached(), plain()
        assert fast.total.item() == pytest.approx(slow.total.item(), rel=1e-5, abs=1e-7)
