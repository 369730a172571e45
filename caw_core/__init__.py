"""caw_core: Confidence-Aware Weighting (CAW) adversarial fine-tuning for CLIP.

The library half of caw: models, datasets, attacks, training objectives, the
training loop and the zero-shot robustness benchmark. It never imports Qt.
"""

__version__ = "0.1.0"
