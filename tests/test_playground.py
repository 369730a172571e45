"""caw_core.playground: fresh weights after a run continues, cancel inside an attack, verdicts, model input."""

from __future__ import annotations

import blobs
import numpy as np
import pytest
import torch
from PIL import Image

from caw_core.attacks.control import AttackCancelled
from caw_core.models import ModelSpec, load_model
from caw_core.playground import ModelCache, PlaygroundRequest, class_index, run_playground
from caw_core.train import Trainer

TINY = ModelSpec("caw-test-tiny", None)


def _blob_image(index: int = 0) -> Image.Image:
    from caw_core.data import load_dataset

    image, _ = load_dataset(blobs.NAME, split="test", image_size=32).data[index]
    return Image.fromarray((image.permute(1, 2, 0).numpy() * 255).astype(np.uint8))


def _request(**overrides) -> PlaygroundRequest:
    base = dict(image=_blob_image(), classnames=list(blobs.CLASSES), templates=["a {} picture."], attack="pgd",
                eps=4.0, steps=2)
    base.update(overrides)
    return PlaygroundRequest(**base)


def _tower(model) -> torch.Tensor:
    return torch.cat([p.detach().flatten() for p in model.image_encoder.parameters()])


def test_cache_reloads_a_run_that_continued(tiny_train_config):
    """The stale-weights defect: same run folder, newer checkpoint -> the cache must hand out the new weights."""
    config = tiny_train_config(max_steps=2, save_every=1)
    list(Trainer(config).run())
    run_dir = f"{config.runs_dir}/{config.name}"
    spec = ModelSpec(TINY.name, None, run_dir)
    cache = ModelCache()
    before = _tower(cache.get(spec, "cpu"))
    assert torch.equal(_tower(cache.get(spec, "cpu")), before)  # unchanged run: served from the cache
    list(Trainer(tiny_train_config(max_steps=5, save_every=1), resume=True).run())
    after = _tower(cache.get(spec, "cpu"))
    assert not torch.equal(after, before)
    assert torch.equal(after, _tower(load_model(spec)))  # exactly the newest checkpoint's weights


def test_cancel_stops_a_long_autoattack_within_a_forward_pass(tiny_model):
    """should_stop turns true after 5 forwards of an AA with 1000 iterations: the attack ends right there."""
    calls = []
    tiny_model.register_forward_hook(lambda *args: calls.append(1))
    request = _request(attack="aa", steps=1000, eps=8.0)
    stop_after = 5
    records = run_playground(request, {"vanilla": tiny_model}, should_stop=lambda: len(calls) >= stop_after)
    seen = []
    with pytest.raises(AttackCancelled):
        for record in records:
            seen.append(record["event"])
    assert seen == ["input", "clean"]
    # the clean pass made 2 forwards; the attack is stopped before its next forward after the 5th
    assert stop_after <= len(calls) <= stop_after + 1


def test_progress_is_reported_for_every_forward(tiny_model):
    progress = []
    records = list(run_playground(_request(steps=3), {"vanilla": tiny_model}, on_progress=progress.append))
    assert records[-1]["event"] == "done"
    assert [p["forwards"] for p in progress] == list(range(1, len(progress) + 1)) and progress
    assert all(p["expected"] >= 3 and p["crafted_on"] == "vanilla" for p in progress)


def test_zero_budget_finds_nothing_and_the_verdict_says_robust(tiny_model):
    records = list(run_playground(_request(eps=0.0), {"vanilla": tiny_model}))
    adversarial = next(r for r in records if r["event"] == "adversarial")
    assert adversarial["found_nothing"] and adversarial["linf"] == 0
    assert adversarial["verdict"] == {"vanilla": "robust"} and not adversarial["true_label"]


def test_true_label_gives_fooled_robust_or_wrong(tiny_model):
    clean = next(r for r in run_playground(_request(), {"vanilla": tiny_model}) if r["event"] == "clean")
    predicted = blobs.CLASSES.index(clean["predicted"]["vanilla"])
    wrong = (predicted + 1) % 3
    records = list(run_playground(_request(label=wrong), {"vanilla": tiny_model}))
    adversarial = next(r for r in records if r["event"] == "adversarial")
    assert adversarial["verdict"] == {"vanilla": "wrong"} and adversarial["label"] == blobs.CLASSES[wrong]
    strong = list(run_playground(_request(label=predicted, eps=64.0, steps=20), {"vanilla": tiny_model}))
    adversarial = next(r for r in strong if r["event"] == "adversarial")
    top = adversarial["topk"]["vanilla"][0][0]
    assert adversarial["verdict"]["vanilla"] == ("robust" if top == blobs.CLASSES[predicted] else "fooled")
    assert adversarial["true_label"] and 0 < adversarial["linf"] <= 64 / 255 + 1e-6


def test_transfer_crafts_once_and_judges_both(tiny_model):
    torch.manual_seed(1)
    other = load_model(TINY)
    records = list(run_playground(_request(source="vanilla"), {"vanilla": tiny_model, "finetuned": other}))
    adversarial = [r for r in records if r["event"] == "adversarial"]
    assert len(adversarial) == 1 and adversarial[0]["crafted_on"] == "vanilla"
    assert set(adversarial[0]["verdict"]) == set(adversarial[0]["topk"]) == {"vanilla", "finetuned"}


def test_the_model_input_is_described(tiny_model):
    wide = Image.fromarray(np.zeros((48, 64, 3), np.uint8))
    first = next(run_playground(_request(image=wide), {"vanilla": tiny_model}))
    assert first["event"] == "input" and first["image"].shape == (32, 32, 3) and first["original"] == (64, 48)
    assert "resized from 64×48 to 32×32" in first["note"] and "centre-cropped" in first["note"]
    square = next(run_playground(_request(image=Image.fromarray(np.zeros((32, 32, 3), np.uint8))),
                                 {"vanilla": tiny_model}))
    assert square["note"] == ""


def test_bad_requests_and_class_names(tiny_model):
    with pytest.raises(ValueError, match="at least two"):
        list(run_playground(_request(classnames=["red"]), {"vanilla": tiny_model}))
    with pytest.raises(ValueError, match="unknown attack"):
        list(run_playground(_request(attack="fgsm"), {"vanilla": tiny_model}))
    assert class_index(blobs.CLASSES, "Green") == 1
    with pytest.raises(ValueError, match="did you mean 'green'"):
        class_index(blobs.CLASSES, "gren")


# -- caw-core attack -------------------------------------------------------------------------------------------

def _scene(path) -> str:
    from caw_core.data import toyworld as tw

    Image.fromarray(tw.render_uint8(tw.sample_scenes(2, [0]))[0]).save(path)
    return str(path)


def test_cli_attacks_a_toy_scene_with_its_true_label(tmp_path, capsys):
    from caw_core.cli import main
    from caw_core.data import toyworld as tw

    shape = tw.SHAPES[tw.sample_scenes(2, [0]).shape[0]]
    out = tmp_path / "adv.png"
    assert main(["attack", _scene(tmp_path / "scene.png"), "--model", "toy", "--attack", "aa", "--steps", "3",
                 "--eps", "4", "--label", shape, "--out", str(out), "--device", "cpu"]) == 0
    text = capsys.readouterr().out
    assert "classes: 5 from preset toy-shape" in text and f"pushing away from true class '{shape}'" in text
    assert "model input: 64×64: used as is" in text
    assert text.count("clean:") == 1 and text.count("adversarial:") == 1 and text.count("verdict:") == 1
    assert any(word in text for word in ("ROBUST: still predicts", "FOOLED: now predicts", "WRONG: already wrong"))
    saved = np.asarray(Image.open(out))
    assert saved.shape == (64, 64, 3) and f"vanilla (toy): {out}" in text


def test_cli_compares_vanilla_and_finetuned_on_a_photo(tmp_path, capsys, tiny_train_config):
    from importlib import resources

    from caw_core.cli import main

    config = tiny_train_config(max_steps=1)
    list(Trainer(config).run())
    photo = str(resources.files("caw_gui") / "resources" / "samples" / "cat.jpg")
    out = tmp_path / "cat.png"
    assert main(["attack", photo, "--model", TINY.name, "--pretrained", "none", "--checkpoint", f"{config.runs_dir}/{config.name}",
                 "--classes", "cat,dog,car", "--steps", "1", "--out", str(out), "--device", "cpu"]) == 0
    text = capsys.readouterr().out
    assert "resized from 384×255 to 32×32, centre-cropped" in text
    assert text.count("verdict:") == 2 and "fine-tuned (run)" in text
    assert (tmp_path / "cat_vanilla.png").is_file() and (tmp_path / "cat_finetuned.png").is_file()


@pytest.mark.parametrize("extra, message", [
    (["--label", "hexagon"], "unknown class 'hexagon'"),
    (["--classes", "circle"], "at least two class names"),
    (["--template", "a photo"], "needs one {}"),
    (["--attack", "fgsm"], "unknown attack"),
    (["--source", "finetuned"], "needs --checkpoint"),
])
def test_cli_refuses_bad_requests_clearly(tmp_path, capsys, extra, message):
    from caw_core.cli import main

    assert main(["attack", _scene(tmp_path / "scene.png"), "--model", "toy", "--device", "cpu"] + extra) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_cli_refuses_a_bad_image_clearly(tmp_path, capsys):
    from caw_core.cli import main

    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not an image at all")
    assert main(["attack", str(broken), "--model", "toy"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("caw-core attack: error:") and "broken.png" in err and "Traceback" not in err
    assert main(["attack", str(tmp_path / "missing.png"), "--model", "toy"]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_cli_refuses_odd_class_files_and_budgets(tmp_path, capsys):
    from caw_core.cli import main

    scene = _scene(tmp_path / "scene.png")
    for extra, message in ((["--classes", "@/dev/zero"], "is not a text file"),
                           (["--classes", f"@{tmp_path}"], "is not a text file"),
                           (["--steps", "99999999999"], "steps must be between 1 and"),
                           (["--eps", "inf"], "finite number"),
                           (["--eps", "1e308"], "eps must be <= 255 under linf")):
        assert main(["attack", scene, "--model", "toy"] + extra) == 2, extra
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err
