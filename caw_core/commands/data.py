"""``caw-core data check|download``: where each dataset is expected, and fetching it."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("data", help="check or download the evaluation datasets")
    sub = parser.add_subparsers(dest="data_command", required=True, metavar="ACTION")
    check = sub.add_parser(
        "check", help="say per dataset: found, or missing with how to get it (exit status 1 when any is missing)",
        description="Check that each dataset is where evaluation reads it. For a missing one, print the files "
                    "missing, the archives to get, their official source, the fetch command where one exists and "
                    "where to unpack them. Exit status: 0 when every dataset asked for is found, 1 otherwise.")
    check.add_argument("names", nargs="*",
                       help="datasets to check (default: the 16 of the paper's protocol; 'all': every registered one)")
    check.add_argument("--root", type=Path, default=Path("data"), help="the data root folder")
    check.set_defaults(run=run_check)
    download = sub.add_parser("download", help="download a dataset with torchvision where it allows it")
    download.add_argument("name")
    download.add_argument("--root", type=Path, default=Path("data"))
    download.set_defaults(run=run_download)


def run_check(args: argparse.Namespace) -> int:
    from caw_core.data import PAPER_DATASETS, available_datasets, check_dataset

    names = available_datasets() if args.names == ["all"] else (args.names or list(PAPER_DATASETS))
    statuses = [check_dataset(name, args.root) for name in names]
    for status in statuses:
        print(status.describe())
    found = sum(s.found for s in statuses)
    print(f"{found} of {len(statuses)} datasets found under {args.root}")
    if found < len(statuses):
        print("for each missing dataset: run its 'fetch' command, or download the archives named from its source "
              "and unpack them where its 'unpack' line says; then run this check again")
        return 1
    return 0


def run_download(args: argparse.Namespace) -> int:
    from caw_core.data import download_dataset

    download_dataset(args.name, args.root)
    print(f"{args.name}: downloaded to {args.root}")
    return 0
