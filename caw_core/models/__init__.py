"""Models: open_clip CLIP as a [0,1]-pixel zero-shot classifier, loading, checkpoints."""

from caw_core.models.loading import (  # noqa: F401
    TEST_ARCH,
    TOY_MODEL,
    ModelLoadError,
    ModelSpec,
    frozen_image_encoder,
    load_model,
)
from caw_core.models.zero_shot import LOGIT_SCALE, ImageEncoder, ZeroShotCLIP, logits_from_features  # noqa: F401
