"""Zero-shot accuracy of a CLIP model on the toy tasks.

Plain open_clip calls: the text head is the normalised ``encode_text`` of each
task's prompts (averaged over its templates), images are normalised with the
model's preprocess mean/std, the prediction is the most similar class.
Scenes are rendered straight from :mod:`caw_core.data.toyworld` in batches
(the same pixels ``load_dataset(task, split=...)`` yields at 64 px, faster).
"""

from __future__ import annotations

import numpy as np
import open_clip
import torch

from caw_core.data import toyworld as tw
from caw_core.data.toy_tasks import SPLITS, TASKS


def normaliser(model: torch.nn.Module):
    """``[0, 1]`` images -> the model's input normalisation (CLIP mean/std)."""
    cfg = open_clip.get_model_preprocess_cfg(model)
    mean = torch.tensor(cfg["mean"]).view(1, 3, 1, 1)
    std = torch.tensor(cfg["std"]).view(1, 3, 1, 1)
    return lambda images: (images - mean) / std


def to_tensor(images: np.ndarray) -> torch.Tensor:
    """(N, S, S, 3) float images -> (N, 3, S, S) tensor."""
    return torch.from_numpy(np.ascontiguousarray(images.transpose(0, 3, 1, 2)))


@torch.no_grad()
def text_head(model, tokenizer, task: str) -> torch.Tensor:
    """(classes, embed) normalised class embeddings of ``task``."""
    attribute, _, templates = TASKS[task]
    rows = []
    for name in tw.ATTRIBUTES[attribute]:
        features = model.encode_text(tokenizer([t.format(name) for t in templates]), normalize=True)
        rows.append(torch.nn.functional.normalize(features.mean(0), dim=-1))
    return torch.stack(rows)


@torch.no_grad()
def zero_shot_accuracy(model, tokenizer, split: str = "test", n: int | None = None, batch: int = 250) -> dict:
    """``{task: {"accuracy", "held_out_accuracy", "chance"}}`` on ``n`` scenes of ``split``.

    ``held_out_accuracy`` is measured on the scenes whose colour x texture pair
    never occurs in pretraining (NaN when the split has none).
    """
    was_training = model.training
    model.eval()
    seed, size, composition = SPLITS[split]
    n = size if n is None else min(n, size)
    normalise = normaliser(model)
    features, labels, held_out = [], [], []
    for start in range(0, n, batch):
        scenes = tw.sample_scenes(seed, range(start, min(start + batch, n)), composition)
        images = to_tensor(tw.render_uint8(scenes).astype(np.float32) / 255.0)
        features.append(model.encode_image(normalise(images), normalize=True))
        labels.append(tw.scene_labels(scenes))
        held_out.append(scenes.is_held_out())
    features = torch.cat(features)
    labels, held_out = np.concatenate(labels), np.concatenate(held_out)
    results = {}
    for task, (attribute, _, _) in TASKS.items():
        predicted = (features @ text_head(model, tokenizer, task).T).argmax(1).numpy()
        correct = predicted == labels[:, list(tw.ATTRIBUTES).index(attribute)]
        results[task] = {
            "accuracy": float(correct.mean()),
            "held_out_accuracy": float(correct[held_out].mean()) if held_out.any() else float("nan"),
            "chance": 1.0 / len(tw.ATTRIBUTES[attribute]),
        }
    model.train(was_training)
    return results
