"""The thread policy: one thread for the small models, every core for big ones, explicit choices win."""

from __future__ import annotations

import pytest
import torch

from caw_core.cli import main, workload_model, build_parser
from caw_core.threads import apply_thread_policy, available_cores, choose_threads


@pytest.fixture
def no_thread_environment(monkeypatch):
    monkeypatch.delenv("CAW_THREADS", raising=False)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)


@pytest.fixture
def restore_threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


@pytest.mark.parametrize("model", ["toy", "caw-test-tiny", "caw-toy-vit", "TOY"])
def test_small_models_run_single_threaded(model, no_thread_environment):
    assert choose_threads(model) == 1


@pytest.mark.parametrize("model", ["ViT-B-32", "ViT-L-14", None])
def test_big_models_use_every_core(model, no_thread_environment):
    assert choose_threads(model) == available_cores()


def test_explicit_choices_win_in_order(monkeypatch, no_thread_environment):
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert choose_threads("ViT-B-32") == 3
    assert choose_threads("toy") == 3
    monkeypatch.setenv("CAW_THREADS", "5")
    assert choose_threads("toy") == 5
    assert choose_threads("toy", threads=2) == 2


@pytest.mark.parametrize("value", ["0", "two", "-1"])
def test_bad_environment_values_are_refused_with_their_name(monkeypatch, value):
    monkeypatch.setenv("CAW_THREADS", value)
    with pytest.raises(ValueError, match="CAW_THREADS must be a positive integer"):
        choose_threads("toy")


def test_apply_sets_torch_threads(no_thread_environment, restore_threads):
    torch.set_num_threads(2)
    assert apply_thread_policy("toy") == 1
    assert torch.get_num_threads() == 1


@pytest.mark.parametrize("argv, model", [
    (["demo", "--quick"], "toy"),
    (["train", "--model", "ViT-L-14"], "ViT-L-14"),
    (["eval", "--models", "ViT-B-16:openai:runs/x"], "ViT-B-16"),
])
def test_cli_picks_the_workload_model(argv, model):
    assert workload_model(build_parser(argv).parse_args(argv)) == model


def test_cli_threads_flag_overrides_the_policy_for_the_command(tmp_path, restore_threads, capsys):
    torch.set_num_threads(1)  # what the policy gives caw-test-tiny
    assert main(["--threads", "2", "bench", "--model", "caw-test-tiny", "--methods", "ft-adv", "--steps", "1",
                 "--warmup", "0", "--classes", "4", "--batch-size", "2", "--no-isolate", "--device", "cpu"]) == 0
    assert torch.get_num_threads() == 2


def test_cli_refuses_a_bad_thread_count(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--threads", "0", "demo"])
    assert exit_info.value.code == 2
    assert "positive integer" in capsys.readouterr().err
