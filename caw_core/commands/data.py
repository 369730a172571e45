"""``caw-core data check|download``: where each dataset is expected, and fetching it."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("data", help="check or download the evaluation datasets")
    sub = parser.add_subparsers(dest="data_command", required=True, metavar="ACTION")
    check = sub.add_parser("check", help="say per dataset: found, or missing with the files expected")
    check.add_argument("names", nargs="*", help="datasets to check (default: all)")
    check.add_argument("--root", type=Path, default=Path("data"), help="the data root folder")
    check.set_defaults(run=run_check)
    download = sub.add_parser("download", help="download a dataset with torchvision where it allows it")
    download.add_argument("name")
    download.add_argument("--root", type=Path, default=Path("data"))
    download.set_defaults(run=run_download)


def run_check(args: argparse.Namespace) -> int:
    from caw_core.data import available_datasets, check_dataset

    names = args.names or available_datasets()
    statuses = [check_dataset(name, args.root) for name in names]
    for status in statuses:
        print(status.describe())
    found = sum(s.found for s in statuses)
    print(f"{found} of {len(statuses)} datasets found under {args.root}")
    return 0


def run_download(args: argparse.Namespace) -> int:
    from caw_core.data import download_dataset

    download_dataset(args.name, args.root)
    print(f"{args.name}: downloaded to {args.root}")
    return 0
