"""``caw-core report``: the paper-style table (Markdown, CSV or JSON) of a results folder, with sanity flags."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(subparsers) -> None:
    from caw_core.report import FORMATS

    parser = subparsers.add_parser(
        "report", help="merge a results folder into the paper's table (with sanity checks)",
        description="Merge the result files written by 'caw-core eval' into one table per setting: rows = models, "
                    "columns = datasets + Avg; clean, robust (worst case per image) and per-attack accuracy; "
                    "followed by sanity checks.")
    parser.add_argument("results", type=Path, help="the folder given to 'caw-core eval --out'")
    parser.add_argument("--format", choices=FORMATS, default="md", help="output format (default: md)")
    parser.add_argument("--out", type=Path, default=None, help="write to this file instead of printing")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from caw_core.io import atomic_write
    from caw_core.report import render_report

    text = render_report(args.results, args.format)
    if args.out is None:
        print(text, end="")
    else:
        atomic_write(args.out, lambda handle: handle.write(text))
        print(f"report written to {args.out}")
    return 0
