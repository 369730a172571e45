"""The toy CLIP: a tiny open_clip model pretrained by caw on the toy world.

``model`` creates and loads it, ``zeroshot`` measures it on the toy tasks and
``pretrain`` makes the committed weights (``caw_core/resources/toy_clip.*``).
"""

from caw_core.toy.model import TOY_ARCH, TOY_WEIGHTS, create_toy_clip, load_toy_clip, toy_tokenizer  # noqa: F401
