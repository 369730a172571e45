"""``caw-core attack``: the attack playground on the command line (one image, vanilla vs fine-tuned)."""

from __future__ import annotations

import argparse
from pathlib import Path

from caw_core.io import BadFileError, read_regular

EPILOG = """\
examples:
  caw-core attack scene.png --model toy --checkpoint runs/caw --attack aa --eps 4 --classes toy-shape
  caw-core attack cat.jpg --model ViT-B-32 --pretrained openai --checkpoint runs/caw-vitb32 \\
      --attack pgd --steps 100 --eps 1 --classes imagenet --label "tabby cat"
  caw-core attack photo.png --model toy --classes "circle,square,triangle" --template "a photo of a {}."

--classes takes a preset (toy-shape, toy-colour, toy-texture, toy-size, toy-position, cifar10,
imagenet), comma-separated names, or @FILE with one name per line. The image is resized and
centre-cropped to the model input; that is the image attacked and saved.
"""


MAX_CLASS_FILE_BYTES = 2**20


def add_parser(subparsers) -> None:
    from caw_core.attacks.registry import attack_choices

    parser = subparsers.add_parser(
        "attack", help="attack one image: vanilla vs fine-tuned top-5 on clean and adversarial, with a verdict",
        description="Classify an image zero-shot with the vanilla model and (with --checkpoint) a fine-tuned one, "
                    "attack it inside the eps ball, classify the adversarial image, say whether each model was "
                    "fooled or stayed robust, and save the adversarial PNG.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("image", help="an image file (PNG, JPEG, WebP, ...)")
    parser.add_argument("--model", default="toy", help="open_clip architecture of the vanilla model, or 'toy' "
                                                      "(default: %(default)s)")
    parser.add_argument("--pretrained", default=None,
                        help="open_clip pretrained tag, local weights file, or 'none' for random init, of the "
                             "vanilla model (default: openai; the toy model always has its embedded weights)")
    parser.add_argument("--checkpoint", default=None, metavar="RUN",
                        help="a caw run or checkpoint folder fine-tuned from the vanilla model (its latest step)")
    attacks = ", ".join(f"{name} ({label})" for name, label in attack_choices().items() if name != "clean")
    parser.add_argument("--attack", default="pgd", help=f"one of: {attacks} (default: %(default)s)")
    parser.add_argument("--eps", type=float, default=4.0, help="radius in units of 1/255 (default: %(default)s)")
    parser.add_argument("--norm", choices=["linf", "l2"], default="linf")
    parser.add_argument("--steps", type=int, default=None,
                        help="iterations: PGD/CW steps, or iterations of each APGD run of AutoAttack "
                             "(default: the attack's own, PGD/CW 10, AutoAttack 100)")
    parser.add_argument("--classes", default=None,
                        help="a preset, comma-separated class names or @FILE (default: toy-shape for the toy model, "
                             "imagenet otherwise)")
    parser.add_argument("--template", default=None,
                        help="prompt template(s) with {} for the class name, several separated by ' | ' "
                             "(default: the preset's, else 'a photo of a {}.')")
    parser.add_argument("--label", default=None,
                        help="the true class name (default: unknown; each model's clean prediction stands in)")
    parser.add_argument("--source", choices=["each", "vanilla", "finetuned"], default="each",
                        help="each: attack every model with its own gradients; vanilla/finetuned: craft on that "
                             "model and show the image to both (transfer) (default: %(default)s)")
    parser.add_argument("--out", default=None,
                        help="adversarial PNG to write (default: IMAGE_STEM_adversarial[_MODEL].png in the current "
                             "folder; with two adversarials the model is appended)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, mps")
    parser.set_defaults(run=run)


def resolve_classes(text, model: str) -> tuple[list[str], list[str], str]:
    """(class names, default templates, what they are) from --classes; ValueError for unusable input."""
    from caw_core.playground import class_presets

    presets = class_presets()
    text = text or ("toy-shape" if model == "toy" else "imagenet")
    if text.lower() in presets:
        preset = presets[text.lower()]
        return list(preset.classnames), list(preset.templates), f"preset {text.lower()}"
    if text.startswith("@"):
        path = Path(text[1:])
        try:
            text_of_file = read_regular(path, MAX_CLASS_FILE_BYTES, "class list").decode("utf-8")
        except (FileNotFoundError, BadFileError) as exc:
            raise ValueError(f"the class list {path} is not a text file of at most "
                             f"{MAX_CLASS_FILE_BYTES // 2**20} MiB ({exc})") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ValueError(f"cannot read the class list {path}: {exc}") from exc
        names = [line.strip() for line in text_of_file.splitlines() if line.strip()]
        where = str(path)
    else:
        names = [name.strip() for name in text.split(",") if name.strip()]
        where = "--classes"
    if len(names) < 2:
        raise ValueError(f"--classes needs at least two class names or a preset ({', '.join(presets)}); "
                         f"got {text!r}")
    return names, ["a photo of a {}."], where


def output_paths(image: str, out, roles: list[str]) -> dict[str, Path]:
    """Where each crafted adversarial goes: --out (with the role appended when there are two)."""
    base = Path(out) if out else Path(f"{Path(image).stem}_adversarial.png")
    base = base.with_suffix(".png")
    if len(roles) == 1:
        return {roles[0]: base}
    return {role: base.with_name(f"{base.stem}_{role}.png") for role in roles}


def _line(entries) -> str:
    return " | ".join(f"{name} {p:.1%}" for name, p in entries)


def run(args: argparse.Namespace) -> int:
    from PIL import Image

    from caw_core.data.images import load_image_with_notes
    from caw_core.distributed import resolve_device
    from caw_core.evaluate import optional
    from caw_core.io import atomic_path
    from caw_core.models import ModelSpec, load_model
    from caw_core.playground import (TEMPLATE_SEPARATOR, PlaygroundRequest, class_index, describe_verdict,
                                     parse_templates, run_playground)

    image, notes = load_image_with_notes(args.image)  # ImageLoadError (a ValueError): one clear line
    classnames, templates, where = resolve_classes(args.classes, args.model)
    if args.template is not None:
        templates = parse_templates(args.template)
    label = class_index(classnames, args.label) if args.label is not None else None
    if args.source == "finetuned" and not args.checkpoint:
        raise ValueError("--source finetuned needs --checkpoint")
    request = PlaygroundRequest(image, classnames, templates, attack=args.attack, norm=args.norm, eps=args.eps,
                                steps=args.steps, source=args.source, label=label)
    request.validate()
    pretrained = args.pretrained if args.pretrained is not None else (None if args.model == "toy" else "openai")
    vanilla = ModelSpec(args.model, optional(pretrained))
    device = resolve_device(args.device)
    models = {"vanilla": load_model(vanilla, device)}
    if args.checkpoint:
        models["finetuned"] = load_model(ModelSpec(args.model, optional(pretrained), args.checkpoint), device)
    names = {"vanilla": f"vanilla ({vanilla.label()})",
             "finetuned": f"fine-tuned ({Path(args.checkpoint).name})" if args.checkpoint else ""}
    roles = list(models) if args.source == "each" else [args.source]
    paths = output_paths(args.image, args.out, roles)

    print(f"image: {args.image} ({image.width}×{image.height})" + (f"; {'; '.join(notes)}" if notes else ""))
    print(f"classes: {len(classnames)} from {where}; templates: {TEMPLATE_SEPARATOR.join(templates)}")
    records = {}
    for record in run_playground(request, models):
        if record["event"] == "adversarial":
            path = paths[record["crafted_on"]]
            with atomic_path(path) as tmp:
                Image.fromarray(record["image"]).save(tmp, format="PNG")
            record["path"] = path
        records.setdefault(record["event"], []).append(record)
    size, note = records["input"][0]["size"], records["input"][0]["note"]
    print(f"model input: {size}×{size}: {note or 'used as is'}")
    clean = records["clean"][0]
    against = f"true class '{clean['label']}'" if clean["label"] else "each model's clean prediction"
    print(f"attack: {args.attack}, {args.norm} eps {args.eps:g}/255, steps {args.steps or 'default'}, "
          f"pushing away from {against}\n")
    for role in models:
        print(names[role])
        print(f"  clean:        {_line(clean['topk'][role])}")
        for adversarial in records["adversarial"]:
            if role in adversarial["verdict"]:
                crafted = adversarial["crafted_on"]
                origin = "" if crafted == role else f" (crafted on {crafted}: transfer)"
                print(f"  adversarial:  {_line(adversarial['topk'][role])}{origin}")
                text = describe_verdict(adversarial["verdict"][role], adversarial["found_nothing"],
                                        adversarial["topk"][role][0][0], adversarial["reference"][role])
                print(f"  verdict:      {adversarial['verdict'][role].upper()}: {text}")
    print()
    for adversarial in records["adversarial"]:
        print(f"adversarial crafted on {names[adversarial['crafted_on']]}: {adversarial['path']} "
              f"(‖δ‖∞ = {adversarial['linf'] * 255:.2f}/255, ‖δ‖₂ = {adversarial['l2']:.3f}, "
              f"{adversarial['seconds']:.1f} s)")
    return 0
