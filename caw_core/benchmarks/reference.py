"""The PMG-AFT and TGA-ZSR reference training steps, ported to open_clip and the CPU for ``bench --mode reference``.

These are the peers' own training steps, kept as close to their code as running
here allows, so that caw's optimized step is timed against what the references
really run (``caw_core.benchmarks.naive`` is caw's own loss formulas computed in
the references' habits, a different and kinder baseline). Read for the port:

* PMG-AFT -- github.com/serendipity1122/Pre-trained-Model-Guided-Fine-Tuning-for-Zero-Shot-Adversarial-Robustness,
  commit 4baf55d2b03085d13f4606f6ff60105dfd8320b4: ``PMG_AFT.py`` (``train``, ``attack_pgd``,
  ``multiGPU_CLIP``, ``clip_img_preprocessing`` with ImageNet mean/std, ``criterion_kl =
  nn.KLDivLoss(reduction="sum")``) and ``replace/model.py`` (``CLIP.forward``).
* TGA-ZSR -- github.com/zhyblue424/TGA-ZSR. ANCHORS.md names commit 5f2b31c (HEAD is broken); that commit is
  not in the stored copy this port was read from, so it follows ``TGA-ZSR.py`` at
  7c22feee4fe22f64387625eb39577a08a1150dda (``train``, ``criterion``: CE + Alpha*L_AM1 + Beta*L_AM2 with the
  l2 distance; that version's ``train`` unpacks a fourth ``loss_SoftCe`` its ``criterion`` does not return --
  the breakage -- so the three returned terms are used; the later HEAD 035eaad reads an undefined
  ``logit_scale``), ``attacks.py`` (``attack_pgd``), ``models/model.py`` (``multiGPU_CLIP``,
  ``clip_img_preprocessing`` with CLIP mean/std), ``attention_map.py`` (``attention_map``, text method) and
  ``replace/model.py`` (``VisionTransformer.forward`` keeps every token through ``ln_post`` and ``proj``;
  ``CLIP.forward`` returns the CLS embedding, normalized, and ``logit_scale.exp()`` * normalized text).

What is kept, as in the sources: the prompts tokenized and the text tower run (with autograd, its parameters
requiring grad) in every forward, including every attack iteration; the attack's uniform random start from
torch's global generator and its ``loss.backward()`` with the parameter gradients it leaves (``zero_grad`` comes
before the attack, so they add to the training gradient); the ``delta`` that still requires grad in the
training forward; separate forward passes for x', x and the original model; the original model a full copy
whose parameters require grad; the loss calls; SGD over the image tower's parameters; the ``logit_scale``
clamp. What had to change: ``clip.load`` -> open_clip (the image tower's every-token output is rebuilt from
open_clip's ``output_tokens``); ``.cuda()``/``DataParallel`` -> one device; ``torch.cuda.amp`` autocast and
``GradScaler`` -> fp32 (or caw's bf16 autocast on CUDA); the images are resized to the tower's own input size
(224 in the sources, which fixes it); ``NullPrompter``/``TokenPrompter(0)`` (identity and None in the FT
setting both scripts train with) are inlined; the per-step ``cosine_lr`` schedule is a fixed learning rate;
logging and accuracy meters are dropped. The original model of PMG-AFT is a second ``clip.load`` in the
source; here it is a deep copy, so random-weight benchmarks start both from the same weights.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

REFERENCE_METHODS = ("pmg-aft", "tga-zsr")
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)  # PMG-AFT's normalize()
CLIP_MEAN, CLIP_STD = (0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711)  # TGA-ZSR's
LOGIT_SCALE_MAX = 4.6052  # ln(100), the clamp both sources apply after each step
TGA_ALPHA, TGA_BETA = 0.08, 0.05  # TGA-ZSR's --Alpha (L_AM1) and --Beta (L_AM2) defaults
LOWER_LIMIT, UPPER_LIMIT = 0, 1


def clip_img_preprocessing(x: torch.Tensor, size: int, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """Bicubic resize to the tower's input size, then (x - mean) / std."""
    x = F.interpolate(x, size=(size, size), mode="bicubic")
    mu = torch.tensor(mean, device=x.device, dtype=x.dtype).view(3, 1, 1)
    sigma = torch.tensor(std, device=x.device, dtype=x.dtype).view(3, 1, 1)
    return (x - mu) / sigma


def clamp(x, lower, upper):
    return torch.max(torch.min(x, upper), lower)


def encode_image_tokens(clip: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """(B, 1 + N, D): every token after ln_post and the projection, CLS first (TGA-ZSR's modified encode_image)."""
    pooled, tokens = clip.visual(images)  # caw's load_model sets output_tokens on ViT towers
    proj = getattr(clip.visual, "proj", None)
    return torch.cat([pooled.unsqueeze(1), tokens @ proj if proj is not None else tokens], dim=1)


def encode_image(clip: nn.Module, images: torch.Tensor) -> torch.Tensor:
    out = clip.visual(images)
    return out[0] if isinstance(out, tuple) else out


def clip_forward(clip: nn.Module, images: torch.Tensor, text_tokens: torch.Tensor, cls_of_tokens: bool):
    """``replace/model.py`` ``CLIP.forward``: (normalized image features, logit_scale.exp() * normalized text)."""
    image_features = encode_image_tokens(clip, images)[:, 0, :] if cls_of_tokens else encode_image(clip, images)
    text_features = clip.encode_text(text_tokens)
    image_features = image_features / image_features.norm(dim=1, keepdim=True)
    text_features = text_features / text_features.norm(dim=1, keepdim=True)
    return image_features, clip.logit_scale.exp() * text_features


def pmg_multi_clip(clip, images, text_tokens):
    """PMG-AFT's ``multiGPU_CLIP``: both embeddings renormalized, so the logits are raw cosines."""
    img_embed, scale_text_embed = clip_forward(clip, images, text_tokens, cls_of_tokens=False)
    img_embed_norm = img_embed / img_embed.norm(dim=-1, keepdim=True)
    scale_text_embed_norm = scale_text_embed / scale_text_embed.norm(dim=-1, keepdim=True)
    logits_per_image = img_embed_norm @ scale_text_embed_norm.t()
    return logits_per_image, logits_per_image.t(), img_embed, scale_text_embed


def tga_multi_clip(clip, images, text_tokens):
    """TGA-ZSR's ``multiGPU_CLIP`` (not the 1000-class ImageNet branch): logits scaled by logit_scale.exp()."""
    img_embed, scale_text_embed = clip_forward(clip, images, text_tokens, cls_of_tokens=True)
    logits_per_image = img_embed @ scale_text_embed.t()
    return logits_per_image, scale_text_embed @ img_embed.t(), scale_text_embed


def attack_pgd(forward: Callable, images, target, text_tokens, alpha: float, attack_iters: int,
               epsilon: float, criterion) -> torch.Tensor:
    """Both sources' ``attack_pgd`` (l_inf branch): uniform start, ``loss.backward()``, sign step, clamps."""
    delta = torch.zeros_like(images)
    delta.uniform_(-epsilon, epsilon)
    delta = clamp(delta, LOWER_LIMIT - images, UPPER_LIMIT - images)
    delta.requires_grad = True
    for _ in range(attack_iters):
        output = forward(images + delta, text_tokens)
        loss = criterion(output, target)
        loss.backward()
        grad = delta.grad.detach()
        d = delta[:, :, :, :]
        g = grad[:, :, :, :]
        x = images[:, :, :, :]
        d = torch.clamp(d + alpha * torch.sign(g), min=-epsilon, max=epsilon)
        d = clamp(d, LOWER_LIMIT - x, UPPER_LIMIT - x)
        delta.data[:, :, :, :] = d
        delta.grad.zero_()
    return delta


def attention_map(text_features, clip, images, image_size: int):
    """TGA-ZSR's text-guided attention map: tokens normalized across tokens (CLS included), patch tokens .
    target text, min-max over patches, bilinear resize to the input size."""
    image_features = encode_image_tokens(clip, images)
    image_features = image_features / image_features.norm(dim=1, keepdim=True)
    img_spatial_feat = image_features[:, 1:, :]
    am = img_spatial_feat @ text_features.unsqueeze(-1)
    am = (am - am.min(1, keepdim=True)[0]) / (am.max(1, keepdim=True)[0] - am.min(1, keepdim=True)[0])
    side = int(am.shape[1] ** 0.5)
    am = am.reshape(am.shape[0], side, side, -1).permute(0, 3, 1, 2)
    return F.interpolate(am, image_size, mode="bilinear")


@dataclass
class ReferenceState:
    """What a reference ``train()`` holds across steps: the models, the prompts, the optimizer, the recipe."""

    model: nn.Module  # open_clip CLIP, every parameter requiring grad (as clip.load leaves them)
    model_ori: nn.Module
    tokenizer: Callable
    texts: list[str]
    optimizer: torch.optim.Optimizer
    image_size: int
    epsilon: float
    alpha: float
    attack_iters: int


def reference_state(clip: nn.Module, tokenizer, texts: list[str], image_size: int, lr: float, momentum: float,
                    epsilon: float, alpha: float, attack_iters: int) -> ReferenceState:
    """Unfreeze ``clip`` as ``clip.load`` leaves it, copy it as the original model, SGD on ``clip.visual``."""
    for p in clip.parameters():
        p.requires_grad_(True)
    model_ori = copy.deepcopy(clip).eval()
    clip.eval()
    clip.visual.train()
    optimizer = torch.optim.SGD(clip.visual.parameters(), lr=lr, momentum=momentum, weight_decay=0)
    return ReferenceState(clip, model_ori, tokenizer, list(texts), optimizer, image_size, epsilon, alpha,
                          attack_iters)


def pmg_aft_step(state: ReferenceState, images: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
    """One iteration of PMG-AFT's ``train()`` loop; returns its loss and the three terms (detached)."""
    model, model_ori, device = state.model, state.model_ori, images.device
    criterion = torch.nn.CrossEntropyLoss().to(device)
    criterion_kl = nn.KLDivLoss(reduction="sum").to(device)

    def preprocess(x):
        return clip_img_preprocessing(x, state.image_size, IMAGENET_MEAN, IMAGENET_STD)

    state.optimizer.zero_grad()
    text_tokens = state.tokenizer(state.texts).to(device)
    delta = attack_pgd(lambda x, tokens: pmg_multi_clip(model, preprocess(x), tokens)[0], images, target,
                       text_tokens, state.alpha, state.attack_iters, state.epsilon, criterion)
    tmp = preprocess(images + delta)
    tem_clean = preprocess(images)
    prompted_images, prompted_clean_images = tmp, tem_clean
    output, _, img_embed, _ = pmg_multi_clip(model, prompted_images, text_tokens)
    output_ori, _, img_embed_ori, _ = pmg_multi_clip(model_ori, prompted_images, text_tokens)
    output_clean, _, img_embed_clean, _ = pmg_multi_clip(model, prompted_clean_images, text_tokens)
    loss_advori = criterion_kl(F.log_softmax(output_ori, dim=1), F.softmax(output, dim=1))
    loss_advclean = criterion_kl(F.log_softmax(output_clean, dim=1), F.softmax(output, dim=1))
    ce = criterion(output, target)
    loss = ce + loss_advclean + loss_advori
    loss.backward()
    state.optimizer.step()
    model.logit_scale.data = torch.clamp(model.logit_scale.data, 0, LOGIT_SCALE_MAX)
    return {"loss": loss.detach(), "ce": ce.detach(), "kl_clean": loss_advclean.detach(),
            "kl_original": loss_advori.detach(), "adv": (images + delta).detach(), "output": output.detach()}


def tga_zsr_step(state: ReferenceState, images: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
    """One iteration of TGA-ZSR's ``train()`` loop (FT, text attention, l2); returns the loss and its terms."""
    model, frozen_model, device = state.model, state.model_ori, images.device
    criterion = torch.nn.CrossEntropyLoss().to(device)

    def preprocess(x):
        return clip_img_preprocessing(x, state.image_size, CLIP_MEAN, CLIP_STD)

    state.optimizer.zero_grad()
    text_tokens = state.tokenizer(state.texts).to(device)
    delta = attack_pgd(lambda x, tokens: tga_multi_clip(model, preprocess(x), tokens)[0], images, target,
                       text_tokens, state.alpha, state.attack_iters, state.epsilon, criterion)
    tmp = preprocess(images + delta)
    prompted_images = tmp
    clean_images = preprocess(images)
    output, _, text_features = tga_multi_clip(model, prompted_images, text_tokens)
    text_features = text_features[target, :]
    batch = prompted_images.size()[0]
    attack_tar = attention_map(text_features, model, prompted_images, state.image_size).view(batch, -1)
    clean_ori = attention_map(text_features, frozen_model, clean_images, state.image_size).view(batch, -1)
    clean_tar = attention_map(text_features, model, clean_images, state.image_size).view(batch, -1)
    loss_tecoa = criterion(output, target)
    loss_am1 = TGA_ALPHA * torch.mean(torch.norm(attack_tar - clean_ori, dim=1, p=2))
    loss_am2 = TGA_BETA * torch.mean(torch.norm(clean_tar - clean_ori, dim=1, p=2))
    loss = loss_tecoa + loss_am1 + loss_am2
    loss.backward()
    state.optimizer.step()
    model.logit_scale.data = torch.clamp(model.logit_scale.data, 0, LOGIT_SCALE_MAX)
    return {"loss": loss.detach(), "ce": loss_tecoa.detach(), "attn_adv": loss_am1.detach(),
            "attn_clean": loss_am2.detach(), "adv": (images + delta).detach(), "output": output.detach()}


REFERENCE_STEPS = {"pmg-aft": pmg_aft_step, "tga-zsr": tga_zsr_step}
