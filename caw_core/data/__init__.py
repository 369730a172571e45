"""Datasets: the registry and every built-in dataset (importing registers them)."""

from caw_core.data.registry import (  # noqa: F401
    DatasetError,
    DatasetNotFoundError,
    DatasetDownloadError,
    DatasetSpec,
    DatasetStatus,
    UnknownDatasetError,
    ZeroShotDataset,
    available_datasets,
    check_dataset,
    download_dataset,
    get_spec,
    load_dataset,
    register,
)
from caw_core.data import toy_tasks  # noqa: F401,E402  (registers the toy-* tasks)
from caw_core.data.paper import PAPER_DATASETS  # noqa: F401,E402  (registers the 16 benchmark datasets)
