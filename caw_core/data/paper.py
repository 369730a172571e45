"""The 16 datasets of the CAW evaluation protocol (TinyImageNet + 15), in table order.

Importing this module registers all of them.
"""

from caw_core.data import imagenet, tinyimagenet, torchvision_sets  # noqa: F401  (registration)

PAPER_DATASETS = (
    "tinyimagenet",
    "cifar10",
    "cifar100",
    "stl10",
    "sun397",
    "food101",
    "pets",
    "flowers102",
    "dtd",
    "eurosat",
    "aircraft",
    "imagenet",
    "caltech101",
    "caltech256",
    "cars",
    "pcam",
)
