"""One progress presenter for every long command: tqdm on a terminal, plain lines when piped, silent with --quiet."""

from __future__ import annotations

import io

import pytest

import blobs
from caw_core.cli import main
from caw_core.commands.progress import Progress


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_piped_output_is_plain_lines_with_eta_every_tenth():
    stream = io.StringIO()
    with Progress(20, "train", "step", stream=stream) as progress:
        for step in range(1, 21):
            progress.update(step, loss=0.5)
    lines = stream.getvalue().splitlines()
    assert "\r" not in stream.getvalue()
    assert len(lines) == 10
    assert lines[0].startswith("train: 2/20 step (10%), ") and "ETA" in lines[0] and lines[0].endswith("loss 0.5")
    assert lines[-1].startswith("train: 20/20 step (100%)")


def test_resumed_job_starts_from_its_initial_count():
    stream = io.StringIO()
    progress = Progress(100, "train", "step", initial=95, stream=stream)
    progress.update(96)
    progress.update(100)
    assert stream.getvalue().splitlines()[-1].startswith("train: 100/100 step (100%)")


def test_terminal_gets_a_tqdm_bar_and_quiet_gets_nothing():
    terminal = Terminal()
    with Progress(10, "eval", "img", stream=terminal) as progress:
        progress.update(5, acc="50%")
        progress.message("a side line")
    text = terminal.getvalue()
    assert "\r" in text and "5/10" in text and "a side line" in text and "<" in text  # tqdm's elapsed<remaining

    silent = Terminal()
    with Progress(10, "eval", "img", quiet=True, stream=silent) as progress:
        progress.update(10)
        progress.message("hidden")
    assert silent.getvalue() == ""


@pytest.mark.slow
@pytest.mark.parametrize("quiet", [False, True])
def test_train_prints_plain_progress_lines_when_piped(quiet, tmp_path, capsys):
    argv = ["train", "--method", "caw", "--model", "caw-test-tiny", "--pretrained", "none", "--data", blobs.NAME,
            "--batch-size", "16", "--num-workers", "0", "--device", "cpu", "--max-steps", "2", "--eps", "4",
            "--runs-dir", str(tmp_path), "--name", "run"] + (["--quiet"] if quiet else [])
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert "done at step 2" in captured.out
    assert ("train: 2/2 step (100%)" in captured.err) is not quiet
    assert ("run folder:" in captured.err) is not quiet
