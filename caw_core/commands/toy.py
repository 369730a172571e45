"""``caw-core toy``: pretrain the toy CLIP, or look at the toy world.

    caw-core toy pretrain [--minutes M | --steps N] [--seed S] [--out DIR]
    caw-core toy sample --out grid.png [--n 32] [--split test]
"""

from __future__ import annotations

import argparse
import math
import sys

from caw_core.commands.config_args import non_negative_int, positive_float, positive_int


def add_parser(subparsers) -> argparse.ArgumentParser:
    from caw_core.toy.model import RESOURCES
    from caw_core.toy.pretrain import PretrainConfig

    defaults = PretrainConfig()
    parser = subparsers.add_parser("toy", help="the embedded toy world and its tiny CLIP")
    sub = parser.add_subparsers(dest="toy_command", required=True)

    pre = sub.add_parser("pretrain", help="pretrain the toy CLIP and write weights + card")
    budget = pre.add_mutually_exclusive_group()
    budget.add_argument("--minutes", type=positive_float, help="time budget; the step count is estimated from a short benchmark")
    budget.add_argument("--steps", type=positive_int, help=f"exact number of steps (reproducible; default {defaults.steps})")
    pre.add_argument("--seed", type=int, default=0)
    pre.add_argument("--out", default=str(RESOURCES), help="folder for toy_clip.safetensors/.json (default: the package's)")
    pre.add_argument("--batch-size", type=positive_int, default=defaults.batch_size)
    pre.add_argument("--lr", type=positive_float, default=defaults.lr)
    pre.add_argument("--threads", type=positive_int, default=defaults.threads)
    pre.add_argument("--eval-every", type=non_negative_int, default=0, help="zero-shot check every N steps (0: only at the end)")
    pre.add_argument("--print-every", type=positive_int, default=10)

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

    config = PretrainConfig(
        steps=args.steps or PretrainConfig.steps,
        batch_size=args.batch_size,
        lr=args.lr,
        seed=args.seed,
        threads=args.threads,
        eval_every=args.eval_every,
        out_dir=args.out,
    )
    if args.minutes is not None:
        config.steps = estimate_steps(config, args.minutes)
        print(f"{args.minutes:g} min at this machine's speed -> {config.steps} steps; to reproduce: {config.command()}")
    for record in pretrain(config):
        step = int(record["step"])
        if "wall_time_s" in record or any(k.startswith("zeroshot/") for k in record) or step % args.print_every == 0:
            print(_format(record), flush=True)
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
    grid.save(args.out)
    print(f"wrote {n} scenes to {args.out}", file=sys.stderr)
    return 0
