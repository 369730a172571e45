"""``caw-core toy``: pretrain the toy CLIP, or look at the toy world.

    caw-core toy pretrain [--minutes M | --steps N] [--seed S] [--out DIR]
        (DIR defaults to a folder in the user's data directory; ``--out caw_core/resources``
        in a source checkout replaces the embedded toy CLIP)
    caw-core toy sample --out grid.png [--n 32] [--split test]
"""

from __future__ import annotations

import argparse
import math
import sys

from caw_core.commands.config_args import (add_dataclass_options, given_options, non_negative_float,
                                           non_negative_int, positive_float, positive_int, probability)
from caw_core.commands.progress import Progress, add_quiet_flag
from caw_core.io import atomic_path


PRETRAIN_HELP = {
    "steps": "exact number of steps (reproducible)",
    "batch_size": "scene-caption pairs per step",
    "lr": "AdamW learning rate",
    "weight_decay": "AdamW weight decay",
    "warmup_steps": "linear warm-up steps",
    "keep_prob": "chance a caption names each of colour/texture/size/position",
    "shape_prob": "chance a caption names the shape",
    "seed": "seeds the scenes and the weights",
    "threads": "torch CPU threads",
    "eval_every": "zero-shot check every N steps (0: only at the end)",
    "eval_images": "test scenes per task for the final card",
    "out_dir": "folder for the weights and card (default: %s; from a source checkout, "
               "--out caw_core/resources replaces the embedded weights)",
}


def add_parser(subparsers) -> argparse.ArgumentParser:
    from caw_core.toy.pretrain import PretrainConfig, default_out_dir

    parser = subparsers.add_parser("toy", help="the embedded toy world and its tiny CLIP")
    sub = parser.add_subparsers(dest="toy_command", required=True)

    pre = sub.add_parser("pretrain", help="pretrain the toy CLIP and write weights + card")
    pre.add_argument("--minutes", type=positive_float,
                     help="time budget instead of --steps; the step count is estimated from a short benchmark")
    help_texts = {**PRETRAIN_HELP, "out_dir": PRETRAIN_HELP["out_dir"] % str(default_out_dir()).replace("%", "%%")}
    add_dataclass_options(pre, PretrainConfig, help_texts, skip=("extra", "name"), aliases={"out_dir": ("--out",)},
                          types={"steps": positive_int, "batch_size": positive_int, "lr": positive_float,
                                 "weight_decay": non_negative_float, "warmup_steps": non_negative_int,
                                 "keep_prob": probability, "shape_prob": probability, "threads": positive_int,
                                 "eval_every": non_negative_int, "eval_images": positive_int})
    pre.add_argument("--print-every", type=positive_int, default=10, help="print every N steps (default: 10)")
    add_quiet_flag(pre)

    sample = sub.add_parser("sample", help="save a grid of toy scenes with their captions")
    sample.add_argument("--out", required=True, help="PNG path")
    sample.add_argument("--n", type=positive_int, default=32)
    sample.add_argument("--split", choices=("train", "test"), default="test")
    parser.set_defaults(run=run)
    return parser


def run(args) -> int:
    if args.toy_command == "pretrain":
        return _pretrain(args)
    if args.toy_command == "sample":
        return _sample(args)
    raise ValueError(f"unknown toy command {args.toy_command!r}")


def _pretrain(args) -> int:
    from caw_core.toy.pretrain import PretrainConfig, estimate_steps, pretrain

    given = given_options(PretrainConfig, args)
    if args.minutes is not None and "steps" in given:
        raise ValueError("give --minutes or --steps, not both")
    config = PretrainConfig(**given)
    if args.minutes is not None:
        config.steps = estimate_steps(config, args.minutes)
        print(f"{args.minutes:g} min at this machine's speed -> {config.steps} steps; to reproduce: {config.command()}")
    with Progress(config.steps, "pretrain", "step", quiet=args.quiet) as progress:
        for record in pretrain(config):
            step = int(record["step"])
            progress.update(step)
            if "wall_time_s" in record or any(k.startswith("zeroshot/") for k in record) or step % args.print_every == 0:
                progress.message(_format(record))
    print(f"wrote {config.out_dir}/{config.name}.safetensors and {config.name}.json")
    return 0


def _format(record: dict) -> str:
    parts = []
    for key, value in record.items():
        if key == "step":
            parts.append(f"step {int(value)}")
        elif isinstance(value, float) and not math.isnan(value):
            parts.append(f"{key.removeprefix('zeroshot/')} {value:.4g}")
    return "  ".join(parts)


def _sample(args) -> int:
    from PIL import Image, ImageDraw

    from caw_core.data import toyworld as tw
    from caw_core.data.toy_tasks import SPLITS

    seed, size, composition = SPLITS[args.split]
    n = min(args.n, size)
    scenes = tw.sample_scenes(seed, range(n), composition)
    images = tw.render_uint8(scenes)
    columns, cell, width, text_h = 4, 2 * tw.IMAGE_SIZE, 200, 48
    rows = math.ceil(n / columns)
    grid = Image.new("RGB", (columns * width, rows * (cell + text_h)), "white")
    draw = ImageDraw.Draw(grid)
    for i in range(n):
        x, y = (i % columns) * width, (i // columns) * (cell + text_h)
        grid.paste(Image.fromarray(images[i]).resize((cell, cell), Image.NEAREST), (x, y))
        text = tw.caption(scenes, i, template="{}").replace(" in the ", "\nin the ").replace(" on a ", "\non a ")
        draw.multiline_text((x, y + cell + 2), text, fill="black", spacing=2)
    with atomic_path(args.out) as tmp:
        grid.save(tmp, format="PNG")
    print(f"wrote {n} scenes to {args.out}", file=sys.stderr)
    return 0
