"""caw-core bench: the naive step computes the same losses as the optimized one, text-head use, the JSON report.

No wall-clock assertions: timings on a shared CPU say nothing in a test.
"""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F

from caw_core.benchmarks.bench import METHODS_BENCHED, BenchConfig, build_step, run_bench
from caw_core.benchmarks.naive import backward_pgd
from caw_core.cli import main
from caw_core.models import logits_from_features

TINY = dict(model="caw-test-tiny", batch_size=6, classes=10, steps=2, warmup=0, device="cpu", threads=1)
CPU = torch.device("cpu")


@pytest.fixture(autouse=True)
def one_thread():
    """The tiny model's ops are too small for two threads; on a busy machine they only wait on each other."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def count_text_encoder_calls(model) -> list:
    calls = []
    encode_text = model.clip.encode_text

    def spy(*args, **kwargs):
        calls.append(1)
        return encode_text(*args, **kwargs)

    model.clip.encode_text = spy
    return calls


def move_away_from_the_original(step, seed: int = 1) -> None:
    """Perturb T (not O) the same way in every step, so that T != O and every loss term is non-trivial."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in step.model.image_encoder.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=generator))


@pytest.mark.parametrize("method", METHODS_BENCHED)
def test_naive_and_optimized_steps_compute_the_same_losses(method):
    config = BenchConfig(**TINY)
    optimized, naive = build_step(config, method, "optimized", CPU), build_step(config, method, "naive", CPU)
    move_away_from_the_original(optimized)
    move_away_from_the_original(naive)
    fast, slow = optimized(), naive()  # same weights, same attack random start, hence the same adversarial batch
    assert fast.parts.keys() == slow.parts.keys()
    # PMG-AFT's reference KL terms on raw cosines are small (~1e-6 here): compare them relatively
    assert all(abs(v.item()) > 1e-7 for v in fast.parts.values()), fast.parts
    assert slow.total.item() == pytest.approx(fast.total.item(), rel=1e-5, abs=1e-6)
    for name in fast.parts:
        assert slow.parts[name].item() == pytest.approx(fast.parts[name].item(), rel=1e-3, abs=1e-9), name


@pytest.mark.parametrize("mode, calls_per_step", [("optimized", 0), ("naive", 1)])
def test_text_encoder_runs_once_per_class_list_optimized_and_every_step_naive(mode, calls_per_step):
    step = build_step(BenchConfig(**TINY), "caw", mode, CPU)
    calls = count_text_encoder_calls(step.model)
    for _ in range(3):
        step()
    assert len(calls) == 3 * calls_per_step
    assert step.model.text_encoder_calls == (1 if mode == "optimized" else 0)  # the cached head, built at setup


def test_naive_attack_zeroes_the_parameter_gradients_it_leaks():
    step = build_step(BenchConfig(**TINY), "pmg-aft", "naive", CPU)
    step()  # leaves the training gradients in .grad
    encoder = step.model.image_encoder
    images = torch.rand(2, 3, 32, 32)
    head = F.normalize(torch.randn(10, 32), dim=-1)
    adv = backward_pgd(lambda x: logits_from_features(encoder(x), head), encoder, images, torch.tensor([0, 1]),
                       lambda out, y: F.cross_entropy(out, y, reduction="none"), 4 / 255, 2 / 255, 2)
    assert all(p.grad is None for p in encoder.parameters())
    assert (adv - images).abs().max() <= 4 / 255 + 1e-6


def test_bench_json_lists_every_method_and_both_modes(capsys):
    code = main(["bench", "--model", "caw-test-tiny", "--batch-size", "4", "--classes", "10", "--steps", "2",
                 "--warmup", "0", "--mode", "both", "--no-isolate", "--threads", "1", "--eval", "--eval-repeats", "1", "--json"])
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    rows = {(r["method"], r["mode"]) for r in report["results"] if r["job"] == "step"}
    assert rows == {(m, mode) for m in METHODS_BENCHED for mode in ("optimized", "naive")}
    for row in report["results"]:
        if row["job"] == "step":
            assert len(row["step_times_s"]) == 2 and row["images_per_s"] > 0 and row["memory_kind"]
    assert set(report["summary"]["per_method"]) == set(METHODS_BENCHED)
    assert report["summary"]["targets"]["eval_pgd10_over_floor (<= 1.2)"] > 0


def test_isolated_jobs_run_in_fresh_processes():
    records = list(run_bench(BenchConfig(**{**TINY, "methods": ("fare",), "steps": 1})))
    assert [(r["method"], r["mode"]) for r in records] == [("fare", "optimized")]
    assert records[0]["memory_kind"] == "cpu_peak_rss_growth" and records[0]["baseline_mb"] > 0


def test_bf16_and_channels_last_are_refused_on_the_cpu():
    with pytest.raises(ValueError, match="CUDA"):
        BenchConfig(**TINY, precision="bf16").validate(CPU)
    with pytest.raises(ValueError, match="CUDA"):
        BenchConfig(**TINY, channels_last=True).validate(CPU)
