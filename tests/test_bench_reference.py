"""The ported PMG-AFT and TGA-ZSR reference steps compute the references' losses (recomputed here from the
sources' formulas on the step's own adversarial batch), encode the prompts as often as the sources, and update
only the image tower."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F

from caw_core.benchmarks.bench import BenchConfig, build_step, run_bench
from caw_core.benchmarks.reference import CLIP_MEAN, CLIP_STD, IMAGENET_MEAN, IMAGENET_STD
from caw_core.losses import kl_divergence_per_example

TINY = dict(model="caw-test-tiny", batch_size=6, classes=10, steps=1, warmup=0, device="cpu", threads=1,
            mode="reference")
CPU = torch.device("cpu")


def preprocess(x, size, mean, std):
    x = F.interpolate(x, size=(size, size), mode="bicubic")
    return (x - torch.tensor(mean).view(3, 1, 1)) / torch.tensor(std).view(3, 1, 1)


def all_tokens(clip, x):
    """Every token after ln_post and the projection (TGA-ZSR's modified VisionTransformer.forward)."""
    visual = clip.visual
    pooled, patches = visual(x)
    return torch.cat([pooled[:, None], patches @ visual.proj], dim=1)


def built(method):
    step = build_step(BenchConfig(**TINY), method, "reference", CPU)
    clip = step.model.clip
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():  # move T away from the original copy so that every term is non-trivial
        for p in clip.visual.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=generator))
    before = copy.deepcopy(clip)  # the weights the step's losses are computed with
    text_calls = []
    encode_text = clip.encode_text
    clip.encode_text = lambda *a, **k: text_calls.append(1) or encode_text(*a, **k)
    return step, clip, before, text_calls


def batch_and_prompts(step):
    return step.reference, step.images, step.labels


def test_pmg_aft_port_gives_the_reference_loss():
    step, clip, before, text_calls = built("pmg-aft")
    state, images, labels = batch_and_prompts(step)
    original = copy.deepcopy(state.model_ori)
    out = step()
    size = state.image_size
    tokens = state.tokenizer(state.texts)
    with torch.no_grad():
        text = F.normalize(before.encode_text(tokens), dim=-1)

        def logits(model, x):  # PMG-AFT's multiGPU_CLIP: raw cosines
            return F.normalize(model.visual(preprocess(x, size, IMAGENET_MEAN, IMAGENET_STD))[0], dim=-1) @ text.t()

        output, output_ori, output_clean = logits(before, out["adv"]), logits(original, out["adv"]), \
            logits(before, images)
        kl = torch.nn.KLDivLoss(reduction="sum")
        expected = {"ce": F.cross_entropy(output, labels),
                    "kl_clean": kl(F.log_softmax(output_clean, 1), F.softmax(output, 1)),
                    "kl_original": kl(F.log_softmax(output_ori, 1), F.softmax(output, 1))}
    for name, value in expected.items():
        assert out[name].item() == pytest.approx(value.item(), rel=1e-4, abs=1e-6), name
    assert out["loss"].item() == pytest.approx(sum(v.item() for v in expected.values()), rel=1e-4)
    assert all(v.item() > 1e-6 for v in expected.values())
    # the reference's KLDivLoss(log P_O(x'), P_T(x')) is KL(P_T(x') || P_O(x')): the adversarial prediction first
    kl_adv_first = kl_divergence_per_example(output, output_ori).sum()
    assert expected["kl_original"].item() == pytest.approx(kl_adv_first.item(), rel=1e-3)
    assert len(text_calls) == 2 + 2  # T encodes the prompts in both attack iterations and both forwards (O once more)


def test_tga_zsr_port_gives_the_reference_loss():
    step, clip, before, text_calls = built("tga-zsr")
    state, images, labels = batch_and_prompts(step)
    original = copy.deepcopy(state.model_ori)
    out = step()
    size = state.image_size
    with torch.no_grad():
        text = before.logit_scale.exp() * F.normalize(before.encode_text(state.tokenizer(state.texts)), dim=-1)
        adv = preprocess(out["adv"], size, CLIP_MEAN, CLIP_STD)
        clean = preprocess(images, size, CLIP_MEAN, CLIP_STD)
        output = F.normalize(all_tokens(before, adv)[:, 0], dim=-1) @ text.t()
        target_text = text[labels]

        def attention(model, x):
            tokens = all_tokens(model, x)
            tokens = tokens / tokens.norm(dim=1, keepdim=True)  # across tokens, as the source does
            scores = (tokens[:, 1:] @ target_text.unsqueeze(-1)).squeeze(-1)
            low, high = scores.min(1, keepdim=True).values, scores.max(1, keepdim=True).values
            side = int(scores.shape[1] ** 0.5)
            maps = ((scores - low) / (high - low)).view(-1, 1, side, side)
            return F.interpolate(maps, size, mode="bilinear").flatten(1)

        clean_ori = attention(original, clean)
        expected = {"ce": F.cross_entropy(output, labels),
                    "attn_adv": 0.08 * (attention(before, adv) - clean_ori).norm(dim=1).mean(),
                    "attn_clean": 0.05 * (attention(before, clean) - clean_ori).norm(dim=1).mean()}
    for name, value in expected.items():
        assert out[name].item() == pytest.approx(value.item(), rel=1e-4, abs=1e-6), name
    assert all(v.item() > 1e-4 for v in expected.values())
    assert len(text_calls) == 2 + 1


@pytest.mark.parametrize("method", ["pmg-aft", "tga-zsr"])
def test_reference_steps_stay_in_the_ball_and_update_only_the_image_tower(method):
    step, clip, before, _ = built(method)
    state, images, _ = batch_and_prompts(step)
    out = step()
    assert (out["adv"] - images).abs().max() <= 1 / 255 + 1e-6
    assert 0 <= out["adv"].min() and out["adv"].max() <= 1
    changed = {name for (name, p), q in zip(clip.named_parameters(), before.parameters()) if not torch.equal(p, q)}
    assert changed and all(name.startswith("visual.") for name in changed)


def test_reference_mode_reports_caw_beside_each_reference():
    records = list(run_bench(BenchConfig(**{**TINY, "isolate": False, "methods": ("pmg-aft",)})))
    modes = {(r["method"], r["mode"], r.get("beside")) for r in records}
    assert modes == {("pmg-aft", "optimized", None), ("pmg-aft", "reference", None), ("caw", "optimized", "pmg-aft")}


def test_reference_mode_refuses_methods_without_a_port():
    with pytest.raises(ValueError, match="ports of pmg-aft, tga-zsr only"):
        list(run_bench(BenchConfig(**{**TINY, "methods": ("fare",)})))


def test_reference_mode_defaults_to_the_ported_methods_and_other_modes_to_every_method():
    from caw_core.cli import build_parser
    from caw_core.commands.config_args import config_from_args

    def methods(*argv):
        return config_from_args(BenchConfig, build_parser().parse_args(["bench", *argv])).methods

    assert methods("--mode", "reference") == ("pmg-aft", "tga-zsr")
    assert methods("--mode", "both") == ("caw", "ft-adv", "pmg-aft", "tga-zsr", "fare")
    assert methods("--mode", "reference", "--methods", "tga-zsr") == ("tga-zsr",)
