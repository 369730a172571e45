"""``caw-core export``: a caw checkpoint as a stock open_clip model folder with a model card."""

from __future__ import annotations

import argparse
from pathlib import Path

from caw_core.commands.progress import Progress, add_quiet_flag


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "export", help="write a checkpoint as a full open_clip model (safetensors + config + model card)",
        description="Write the full CLIP of a caw checkpoint (fine-tuned image tower + the base's text tower and "
                    "logit scale) as open_clip_model.safetensors, open_clip_config.json and a README.md model "
                    "card. Stock open_clip loads it: open_clip.create_model_and_transforms(ARCH, "
                    "pretrained='OUT/open_clip_model.safetensors').")
    parser.add_argument("source", metavar="RUN_OR_CHECKPOINT",
                        help="a caw run folder (its latest checkpoint), a step folder or a model.safetensors")
    parser.add_argument("--out", type=Path, required=True, help="folder to write the export into")
    parser.add_argument("--results", type=Path, default=None,
                        help="an evaluation folder ('caw-core eval --out') whose table goes into the model card")
    add_quiet_flag(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from caw_core.export import EXPORT_STAGES, export_model

    with Progress(len(EXPORT_STAGES), "export", "stage", quiet=args.quiet) as progress:
        export = export_model(args.source, args.out, results=args.results,
                              on_stage=lambda done, stage: progress.update(done, last=stage))
    print(f"exported {export.checkpoint} ({export.arch}) to {export.folder}: load it with {export.open_clip_call()} "
          f"or caw-core eval --model {export.arch} --pretrained {export.weights}")
    return 0
