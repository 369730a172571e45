"""Export a caw checkpoint as a stock open_clip model with a Hugging Face model card.

A caw checkpoint stores the fine-tuned image tower only and names its base
model. :func:`export_model` rebuilds the full CLIP -- the fine-tuned image
tower, the base's frozen text tower and its logit scale -- and writes::

    OUT/open_clip_model.safetensors   the full CLIP state dict, as open_clip names it
    OUT/open_clip_config.json         {"model_cfg": ..., "preprocess_cfg": ...} (open_clip's hub format)
    OUT/README.md                     model card (YAML front matter + recipe, results, threat model)

Stock open_clip loads it without caw, either way::

    open_clip.create_model_and_transforms("ViT-B-32", pretrained="OUT/open_clip_model.safetensors")
    open_clip.create_model_and_transforms("local-dir:OUT")

and caw reads it back as a base model: ``caw-core eval --model ARCH --pretrained OUT/open_clip_model.safetensors``.

Logits: caw classifies with ``100 * cos(f(x), t_c)`` (CLIP's trained
temperature, fixed); the exported ``logit_scale`` is the base model's, which
is ln 100 for OpenAI CLIP, so ``model(image, text)`` gives the same logits.
caw resizes inside the model (bilinear, antialiased) while open_clip's
transform resizes with PIL bicubic: images already at the model's resolution
give identical features.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import torch

from caw_core.io import atomic_path, atomic_write, atomic_write_json
from caw_core.models.checkpoint import CheckpointError, read_base_model, resolve_checkpoint
from caw_core.models.loading import TEST_ARCH, TOY_ARCH, TOY_MODEL, ModelSpec, load_model
from caw_core.typed_json import read_json

WEIGHTS_FILE = "open_clip_model.safetensors"
CONFIG_FILE = "open_clip_config.json"
CARD_FILE = "README.md"
PAPER = "arXiv:2510.02913"


@dataclass(frozen=True)
class Export:
    """What :func:`export_model` wrote: the folder, the open_clip architecture and the run it came from."""

    folder: Path
    arch: str
    base: dict
    checkpoint: Path
    run_config: dict
    logit_scale: float = 100.0  # exp of the exported logit_scale parameter

    @property
    def weights(self) -> Path:
        return self.folder / WEIGHTS_FILE

    @property
    def custom_arch(self) -> bool:
        """True for caw's own architectures (toy, test-tiny), which stock open_clip reads via ``local-dir:``."""
        return self.arch in (TOY_ARCH, TEST_ARCH)

    def open_clip_call(self, folder: Optional[str] = None) -> str:
        """The stock open_clip call that loads this export from ``folder`` (default: where it was written)."""
        folder = folder or str(self.folder)
        if self.custom_arch:
            return f'open_clip.create_model_and_transforms("local-dir:{folder}")'
        return f'open_clip.create_model_and_transforms("{self.arch}", pretrained="{Path(folder) / WEIGHTS_FILE}")'


EXPORT_STAGES = ("load the model", "write the weights", "write the config and the model card")


def export_model(source: str | Path, out_dir: str | Path, results: Optional[str | Path] = None,
                 on_stage: Callable[[int, str], None] = lambda done, stage: None) -> Export:
    """Write the full CLIP of the caw checkpoint ``source`` (run, step folder or model file) to ``out_dir``.

    ``results`` is an evaluation folder (``caw-core eval --out``) whose table goes into the model card.
    ``on_stage(i, name)`` is called as each of :data:`EXPORT_STAGES` finishes (for progress displays).
    """
    import open_clip
    from safetensors.torch import save_file

    checkpoint = resolve_checkpoint(source)
    base = read_base_model(checkpoint)
    if not base.get("name"):
        raise CheckpointError(f"{checkpoint} does not name its base model, so its text tower is unknown")
    if base["name"] != TOY_MODEL and str(base.get("pretrained") or "none").lower() in ("none", "random", ""):
        raise CheckpointError(f"{checkpoint} was fine-tuned from a randomly initialized {base['name']}, whose text "
                              "tower cannot be rebuilt; export needs a base with pretrained weights (a tag or file)")
    if results is not None and not Path(results).is_dir():
        raise FileNotFoundError(f"results folder {results} does not exist")
    model = load_model(ModelSpec(base["name"], base.get("pretrained"), str(checkpoint)))
    on_stage(1, EXPORT_STAGES[0])
    arch = open_clip_name(model.clip, TOY_ARCH if base["name"] == TOY_MODEL else base["name"])
    run_config = _run_config(checkpoint)
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise FileNotFoundError(f"--out {out} exists and is not a folder")

    state = {key: value.detach().to("cpu", torch.float32).contiguous() for key, value in model.clip.state_dict().items()}
    metadata = {"format": "pt", "caw_base_model": json.dumps(base), "caw_checkpoint": str(checkpoint)}
    with atomic_path(out / WEIGHTS_FILE) as tmp:
        save_file(state, str(tmp), metadata=metadata)
    on_stage(2, EXPORT_STAGES[1])
    preprocess = open_clip.get_model_preprocess_cfg(model.clip)
    atomic_write_json(out / CONFIG_FILE, {"model_cfg": open_clip.get_model_config(arch),
                                          "preprocess_cfg": _plain(preprocess)})
    export = Export(out, arch, base, checkpoint, run_config, float(model.clip.logit_scale.detach().exp()))
    card = model_card(export, results)
    atomic_write(out / CARD_FILE, lambda handle: handle.write(card))
    on_stage(3, EXPORT_STAGES[2])
    return export


def open_clip_name(clip: torch.nn.Module, arch: str) -> str:
    """The open_clip name that rebuilds ``clip`` as it is: ``<arch>-quickgelu`` when it runs QuickGELU.

    OpenAI's weights were trained with QuickGELU; open_clip builds plain ``ViT-B-32`` with GELU (and only
    warns when given the openai tag), so the name must say which activation the exported weights ran with.
    """
    import open_clip
    from open_clip.transformer import QuickGELU

    quick = any(isinstance(module, QuickGELU) for module in clip.modules())
    if quick and not arch.endswith("-quickgelu"):
        if f"{arch}-quickgelu" not in open_clip.list_models():
            raise CheckpointError(f"{arch} runs QuickGELU but open_clip has no {arch}-quickgelu config to export it as")
        return f"{arch}-quickgelu"
    return arch


def _run_config(checkpoint: Path) -> dict:
    """The run's config.json (``run/checkpoints/step_N`` -> ``run/config.json``), or {} for a bare checkpoint."""
    path = checkpoint.parent.parent / "config.json"
    try:
        payload = read_json(path, "run config")
    except (OSError, ValueError):  # missing, not a regular file, too large or not JSON
        return {}
    return payload if isinstance(payload, dict) else {}


def _plain(value):
    """Tuples -> lists, recursively, for JSON."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


# --- the model card ----------------------------------------------------------------------------------------------

_RECIPE_FIELDS = (
    ("method", "method"), ("data", "training data"), ("eps", "eps (x/255)"), ("attack_norm", "norm"),
    ("attack_steps", "inner PGD steps"), ("attack_step_size", "inner step size (x/255)"),
    ("optimizer", "optimizer"), ("lr", "learning rate"), ("momentum", "momentum"),
    ("weight_decay", "weight decay"), ("warmup_steps", "warm-up steps"), ("epochs", "epochs"),
    ("max_steps", "max steps"), ("batch_size", "batch size"), ("seed", "seed"),
)


def _hub_id(arch: str, pretrained: Optional[str]) -> Optional[str]:
    """The Hugging Face repo of an open_clip pretrained tag, when open_clip knows one."""
    import open_clip

    if not pretrained:
        return None
    try:
        cfg = open_clip.get_pretrained_cfg(arch, pretrained)
    except Exception:  # local files and unknown tags have no hub id
        return None
    hub = (cfg or {}).get("hf_hub", "")
    return hub.strip("/") or None


def _front_matter(export: Export) -> str:
    method = export.run_config.get("method", "unknown")
    data = export.run_config.get("data")
    tags = ["clip", "open_clip", "zero-shot-image-classification", "adversarial-robustness", "caw",
            f"method-{method}"]
    lines = ["---", "library_name: open_clip", "pipeline_tag: zero-shot-image-classification", "tags:"]
    lines += [f"- {tag}" for tag in tags]
    hub = _hub_id(export.arch, export.base.get("pretrained"))
    if hub:
        lines.append(f"base_model: {hub}")
    if data:
        lines += ["datasets:", f"- {data}"]
    lines.append("---")
    return "\n".join(lines)


def _recipe_table(config: dict) -> str:
    rows = [(label, config[key]) for key, label in _RECIPE_FIELDS if key in config and config[key] is not None]
    options = config.get("method_options")
    if isinstance(options, dict):
        rows += [(f"method option {key}", value) for key, value in options.items()]
    if not rows:
        return "The run's config.json was not found next to the checkpoint, so the recipe is not recorded here."
    out = ["| setting | value |", "|---|---|"] + [f"| {label} | {value} |" for label, value in rows]
    return "\n".join(out)


def _results_section(results: Optional[str | Path]) -> str:
    if results is None:
        return ("No evaluation folder was given to the export (`--results DIR`). Evaluate with\n"
                "`caw-core eval --model ARCH --pretrained open_clip_model.safetensors --out results/` and "
                "export again with `--results results/`.")
    from caw_core.report import render_report

    table = render_report(results, "md")
    return "\n".join(("#" + line) if line.startswith("#") else line for line in table.splitlines())


def _method_summary(method: str) -> str:
    """The method's own description (class, else module docstring: first line) and its reference recipe."""
    import inspect
    import sys

    from caw_core.methods import METHODS

    objective = METHODS.get(str(method).replace("_", "-"))
    if objective is None:
        return "(a method this version of caw does not know)"
    doc = objective.__dict__.get("__doc__") or sys.modules[objective.__module__].__doc__ or ""
    first = inspect.cleandoc(doc).split("\n\n")[0].replace("\n", " ") if doc else objective.name
    source = getattr(getattr(objective, "recipe", None), "source", "")
    return first + (f" Reference recipe: {source}." if source else "")


def model_card(export: Export, results: Optional[str | Path] = None) -> str:
    """The README.md of an export, in the Hugging Face model card convention."""
    base = export.base
    base_label = ("caw's embedded toy CLIP" if base["name"] == TOY_MODEL
                  else f"{base['name']} / {base.get('pretrained')}")
    method = export.run_config.get("method", "unknown")
    data = export.run_config.get("data", "unknown")
    weights = WEIGHTS_FILE
    use = f"model, _, preprocess = {export.open_clip_call('/path/to/this/folder')}"
    if export.custom_arch:
        use += (f"\n# {export.arch} is caw's own architecture: open_clip reads it from this folder's "
                "open_clip_config.json\ntokenizer = open_clip.get_tokenizer(\"local-dir:/path/to/this/folder\")")
    else:
        use += f"\ntokenizer = open_clip.get_tokenizer(\"{export.arch}\")"
    return f"""{_front_matter(export)}

# {export.arch} adversarially fine-tuned with caw ({method})

A CLIP model whose image tower was adversarially fine-tuned by [caw](https://arxiv.org/abs/2510.02913)
with the **{method}** objective on **{data}**, starting from **{base_label}**. The text tower and the
logit scale are the base model's, unchanged (fine-tuning trains the image tower only).

## Use

```python
import open_clip
{use}
```

With caw: `caw-core eval --model {export.arch} --pretrained {weights} ...` (the GUI's model dialog takes the
same file as its pretrained weights).

caw resizes images inside the model (bilinear, antialiased) and classifies with `100 * cos(image, text)`;
open_clip's `model(image, text)` scales the cosine by this export's `logit_scale.exp()` = {export.logit_scale:.4g}
(the base model's; the same ranking, and the same logits where it is 100, as for OpenAI CLIP).
open_clip's transform resizes with bicubic interpolation. Images already at the model's input size give
identical features either way.

## Training recipe

Fine-tuned from checkpoint `{export.checkpoint.name}` of run `{export.run_config.get('name', 'unknown')}`.

{_recipe_table(export.run_config)}

Method: each batch is attacked with PGD inside the eps ball around the clean images (the inner loop), and the
image tower takes one optimizer step on the method's loss at the adversarial images (the outer loop).
{method}: {_method_summary(method)}

## Evaluation

{_results_section(results)}

## Threat model

Attacks perturb pixels in [0, 1] inside an L-inf (or L2) ball of radius eps around the image, before resizing
and CLIP normalization (which are part of the model). The robustness claimed is zero-shot: the attacker knows the
weights and the class prompts (white box), and robust accuracy is the worst case per image over the attacks
listed in the evaluation table, at the eps the table names. Nothing is claimed outside that ball (larger eps,
patches, physical attacks, other norms) or against attacks on the text prompts.

## Limitations

- Robustness is measured at small eps (the CAW protocol uses 1/255); accuracy at larger radii is much lower.
- Adversarial fine-tuning lowers clean zero-shot accuracy relative to the base model.
- The text tower is not fine-tuned; only image-side perturbations are defended against.
- Results depend on the evaluation subset size n; see the table header.

## Citation

```bibtex
@misc{{caw2025,
  title         = {{Zero-Shot Robustness of Vision Language Models Via Confidence-Aware Weighting}},
  year          = {{2025}},
  eprint        = {{2510.02913}},
  archivePrefix = {{arXiv}},
  primaryClass  = {{cs.CV}},
}}
```
"""
