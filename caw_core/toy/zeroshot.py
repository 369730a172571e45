"""Zero-shot accuracy of a CLIP model on the toy tasks.

The model path is :mod:`caw_core.models`' one: the open_clip model is wrapped
in a :class:`~caw_core.models.zero_shot.ZeroShotCLIP`, whose text head is the
normalised mean of each class's normalised prompt embeddings and whose image
encoder applies the model's preprocess mean/std; the prediction is the most
similar class. Scenes are rendered straight from
:mod:`caw_core.data.toyworld` in batches (the same pixels
``load_dataset(task, split=...)`` yields at 64 px, faster).
"""

from __future__ import annotations

import numpy as np
import torch

from caw_core.data import toyworld as tw
from caw_core.data.toy_tasks import SPLITS, TASKS
from caw_core.models.loading import zero_shot_model


def to_tensor(images: np.ndarray) -> torch.Tensor:
    """(N, S, S, 3) float images -> (N, 3, S, S) tensor."""
    return torch.from_numpy(np.ascontiguousarray(images.transpose(0, 3, 1, 2)))


@torch.no_grad()
def zero_shot_accuracy(clip, tokenizer, split: str = "test", n: int | None = None, batch: int = 250) -> dict:
    """``{task: {"accuracy", "held_out_accuracy", "chance"}}`` of open_clip model ``clip`` on ``n`` scenes of ``split``.

    ``held_out_accuracy`` is measured on the scenes whose colour x texture pair
    never occurs in pretraining (NaN when the split has none). The wrapper is
    built per call, so text heads are never cached across calls (pretraining
    trains the text tower between evaluations); ``clip``'s training mode,
    ``requires_grad`` and ``output_tokens`` are left as they were.
    """
    was_training, tokens_mode = clip.training, getattr(clip.visual, "output_tokens", None)
    model = zero_shot_model(clip, tokenizer, "toy", freeze_text=False)  # sets the ViT's output_tokens
    clip.eval()
    seed, size, composition = SPLITS[split]
    n = size if n is None else min(n, size)
    features, labels, held_out = [], [], []
    for start in range(0, n, batch):
        scenes = tw.sample_scenes(seed, range(start, min(start + batch, n)), composition)
        images = to_tensor(tw.render_uint8(scenes).astype(np.float32) / 255.0)
        features.append(model.encode_image(images, normalize=True))
        labels.append(tw.scene_labels(scenes))
        held_out.append(scenes.is_held_out())
    features = torch.cat(features)
    labels, held_out = np.concatenate(labels), np.concatenate(held_out)
    results = {}
    for task, (attribute, _, templates) in TASKS.items():
        head = model.build_text_head(tw.ATTRIBUTES[attribute], templates)
        predicted = (features @ head.T).argmax(1).numpy()
        correct = predicted == labels[:, list(tw.ATTRIBUTES).index(attribute)]
        results[task] = {
            "accuracy": float(correct.mean()),
            "held_out_accuracy": float(correct[held_out].mean()) if held_out.any() else float("nan"),
            "chance": 1.0 / len(tw.ATTRIBUTES[attribute]),
        }
    clip.train(was_training)
    if tokens_mode is not None:
        clip.visual.output_tokens = tokens_mode
    return results
