"""The toy world: procedurally drawn 64x64 scenes with captions.

Nobody building caw can download CLIP weights or datasets, so the project
ships a miniature of the CAW experiment. A scene is one filled shape on a
textured background::

    shape    circle, square, triangle, cross, ring
    colour   red, orange, yellow, green, cyan, blue, purple, white
    texture  plain, striped, checkered, dotted, noisy   (of the background)
    size     small, large
    position top left, top right, bottom left, bottom right   (a quadrant)

with nuisance variation (rotation up to +-15 degrees, position jitter, colour
jitter, background tone, pattern period/phase, pixel noise), so that every
attribute has to be read from the pixels. Shape and texture are both edge
patterns, which is the shared structure that lets adversarial fine-tuning on
one task transfer robustness to the other.

A scene is a pure function of ``(seed, index)``: its parameters come from a
Philox generator keyed by that pair, so a dataset of ``n`` scenes is
reproducible and random-access, and streams with different seeds (pretraining,
fine-tuning train split, test split) are disjoint. Rendering is vectorised over
a batch with numpy.

Rendering is cached per process (:func:`rendered`): a scene is drawn once
and its uint8 pixels and labels are kept, keyed by ``(WORLD_VERSION, seed,
composition, index)``, so training two methods on the same split and
evaluating every model under every attack on the same test scenes render each
scene once. Bump :data:`WORLD_VERSION` whenever a change alters any scene.

Honest zero-shot: the colour x texture pairs in :data:`HELD_OUT_PAIRS` never
occur in the pretraining stream or in the task ``train`` splits
(``composition="seen"``); task ``test`` splits draw from every composition
(``composition="all"``), so a fifth of their colour x texture pairs are novel.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

IMAGE_SIZE = 64
WORLD_VERSION = 1  # part of the render-cache key: bump it when sample_scenes or render change any pixel
RENDER_CACHE_BYTES = 512 * 2**20  # the cache stops growing here (~43k scenes); later scenes render uncached

SHAPES = ("circle", "square", "triangle", "cross", "ring")
COLOURS = ("red", "orange", "yellow", "green", "cyan", "blue", "purple", "white")
TEXTURES = ("plain", "striped", "checkered", "dotted", "noisy")
SIZES = ("small", "large")
POSITIONS = ("top left", "top right", "bottom left", "bottom right")

ATTRIBUTES = {
    "shape": SHAPES,
    "colour": COLOURS,
    "texture": TEXTURES,
    "size": SIZES,
    "position": POSITIONS,
}

_RGB = np.array(
    [
        (0.90, 0.12, 0.10),  # red
        (1.00, 0.55, 0.05),  # orange
        (0.98, 0.92, 0.10),  # yellow
        (0.15, 0.75, 0.15),  # green
        (0.10, 0.85, 0.90),  # cyan
        (0.10, 0.25, 0.95),  # blue
        (0.60, 0.15, 0.80),  # purple
        (0.97, 0.97, 0.97),  # white
    ],
    dtype=np.float32,
)

# One background texture per colour is never shown in pretraining; every
# texture is missed by one or two colours, so colour does not predict texture.
HELD_OUT_PAIRS = tuple((c, TEXTURES[i % len(TEXTURES)]) for i, c in enumerate(COLOURS))
_HELD_OUT_TEXTURE = np.array([i % len(TEXTURES) for i in range(len(COLOURS))])

# Task names; the datasets themselves live in caw_core.data.toy_tasks.
TOY_TASKS = ("toy-shape", "toy-colour", "toy-texture", "toy-size", "toy-position")
TOY_TRAIN_TASK = "toy-shape"  # the TinyImageNet stand-in; the others are held out

# Half-size of a shape (pixels) per size class, before jitter.
_HALF_SIZE = {0: (9.0, 11.0), 1: (14.0, 15.5)}
_N_UNIFORMS = 22  # per-scene uniforms: 5 attributes + 17 nuisance parameters
_CAPTION_SALT = 0x5CA9_710E  # caption randomness is keyed apart from scene randomness


@dataclass(frozen=True)
class Scenes:
    """Parameters of a batch of scenes (arrays of length N).

    The five attribute arrays hold class indices into :data:`ATTRIBUTES`; the
    rest are nuisance parameters.
    """

    shape: np.ndarray
    colour: np.ndarray
    texture: np.ndarray
    size: np.ndarray
    position: np.ndarray
    centre: np.ndarray  # (N, 2) x, y in pixels
    half: np.ndarray  # half-size in pixels
    angle: np.ndarray  # radians
    rgb: np.ndarray  # (N, 3) fill colour after jitter
    bg: np.ndarray  # (N, 3) background base tone
    contrast: np.ndarray  # signed pattern contrast
    period: np.ndarray  # pattern period in pixels
    phase: np.ndarray  # (N, 2) pattern offset in pixels
    stripe_dir: np.ndarray  # 0 horizontal, 1 vertical, 2 diagonal
    noise: np.ndarray  # (N, S, S, 3) pixel noise (texture noise + sensor noise)

    def __len__(self) -> int:
        return len(self.shape)

    def labels(self, attribute: str) -> np.ndarray:
        return getattr(self, attribute)

    def is_held_out(self) -> np.ndarray:
        """True where the scene's colour x texture pair is in HELD_OUT_PAIRS."""
        return _HELD_OUT_TEXTURE[self.colour] == self.texture


def _rng(seed: int, index: int) -> np.random.Generator:
    """The generator of item ``index`` in stream ``seed`` (counter-based, so random-access)."""
    return np.random.Generator(np.random.Philox(key=[int(seed) & (2**64 - 1), int(index)]))


def sample_scenes(seed: int, indices, composition: str = "all") -> Scenes:
    """Scene parameters for ``indices`` of the stream ``seed``.

    ``composition="seen"`` never yields a held-out colour x texture pair (the
    pretraining stream and train splits); ``"all"`` draws every pair uniformly.
    """
    if composition not in ("all", "seen"):
        raise ValueError(f"composition must be 'all' or 'seen', not {composition!r}")
    indices = np.asarray(indices, dtype=np.int64).reshape(-1)
    n, s = len(indices), IMAGE_SIZE
    cols = {k: np.empty(n, np.int64) for k in ATTRIBUTES}
    u = np.empty((n, _N_UNIFORMS), np.float64)
    noise = np.empty((n, s, s, 3), np.float32)
    for row, index in enumerate(indices):
        rng = _rng(seed, index)
        u[row] = rng.random(_N_UNIFORMS)
        noise[row] = rng.standard_normal((s, s, 3), dtype=np.float32)

    def pick(column: int, k: int) -> np.ndarray:
        return np.minimum((u[:, column] * k).astype(np.int64), k - 1)

    cols["shape"] = pick(0, len(SHAPES))
    cols["colour"] = pick(1, len(COLOURS))
    if composition == "seen":  # one of the 4 textures allowed with this colour
        texture = pick(2, len(TEXTURES) - 1)
        cols["texture"] = texture + (texture >= _HELD_OUT_TEXTURE[cols["colour"]])
    else:
        cols["texture"] = pick(2, len(TEXTURES))
    cols["size"] = pick(3, len(SIZES))
    cols["position"] = pick(4, len(POSITIONS))

    low = np.array([_HALF_SIZE[0][0], _HALF_SIZE[1][0]])[cols["size"]]
    high = np.array([_HALF_SIZE[0][1], _HALF_SIZE[1][1]])[cols["size"]]
    half = low + (high - low) * u[:, 5]
    quadrant = np.stack([cols["position"] % 2, cols["position"] // 2], axis=1)
    slack = np.maximum(s / 4 - half - 1, 0)[:, None]  # keep the shape in its quadrant
    centre = (quadrant + 0.5) * (s / 2) + (u[:, 6:8] * 2 - 1) * slack
    angle = np.radians((u[:, 8] * 2 - 1) * 15)
    rgb = np.clip(_RGB[cols["colour"]] + (u[:, 9:12] - 0.5) * 0.12, 0, 1)
    tone = 0.30 + 0.30 * u[:, 12]
    bg = tone[:, None] + (u[:, 13:16] - 0.5) * 0.08
    contrast = np.where(u[:, 16] < 0.5, -1.0, 1.0) * (0.16 + 0.10 * u[:, 17])
    period = 7.0 + 5.0 * u[:, 18]
    phase = u[:, 19:21] * period[:, None]
    stripe_dir = pick(21, 3)
    return Scenes(
        **cols,
        centre=centre,
        half=half,
        angle=angle,
        rgb=rgb.astype(np.float32),
        bg=bg.astype(np.float32),
        contrast=contrast,
        period=period,
        phase=phase,
        stripe_dir=stripe_dir,
        noise=noise,
    )


def _background(sc: Scenes, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """(N, S, S, 3) textured backgrounds: base tone +- contrast * pattern."""
    pattern = np.zeros((len(sc),) + x.shape, np.float32)
    for texture in (1, 2, 3):  # striped, checkered, dotted; plain stays 0
        rows = np.flatnonzero(sc.texture == texture)
        if len(rows) == 0:
            continue
        period = sc.period[rows, None, None].astype(np.float32)
        px = (x[None] + sc.phase[rows, 0, None, None].astype(np.float32)) / period
        py = (y[None] + sc.phase[rows, 1, None, None].astype(np.float32)) / period
        if texture == 1:
            direction = sc.stripe_dir[rows, None, None]
            stripes = np.where(direction == 0, py, np.where(direction == 1, px, (px + py) * 0.7))
            values = np.floor(stripes) % 2 * 2 - 1
        elif texture == 2:
            values = (np.floor(px) + np.floor(py)) % 2 * 2 - 1
        else:
            values = np.where((px % 1 - 0.5) ** 2 + (py % 1 - 0.5) ** 2 < 0.07, 1.0, -1.0)
        pattern[rows] = values
    pattern *= sc.contrast[:, None, None].astype(np.float32)
    image = pattern[..., None] + sc.bg[:, None, None, :]
    noisy = sc.texture == 4
    image[noisy] += sc.noise[noisy] * 0.18  # the "noisy" texture: strong pixel noise
    return image


def _shape_distance(shape: int, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Approximate signed distance to ``shape`` in units of its half-size."""
    rho = np.sqrt(u**2 + v**2)
    if shape == 0:  # circle
        return rho - 1.0
    if shape == 1:  # square
        return np.maximum(np.abs(u), np.abs(v)) - 0.85
    if shape == 2:  # triangle, flat side up (rows grow downwards), circumradius 1.1
        edges = [(math.cos(a), math.sin(a)) for a in np.radians([90, 210, 330])]
        return np.max([u * cx + v * cy for cx, cy in edges], axis=0) - 0.55
    if shape == 3:  # cross (plus sign)
        bar = 0.32
        return np.minimum(
            np.maximum(np.abs(u) - bar, np.abs(v) - 1.0),
            np.maximum(np.abs(u) - 1.0, np.abs(v) - bar),
        )
    if shape == 4:  # ring
        return np.abs(rho - 0.72) - 0.28
    raise ValueError(f"unknown shape index {shape}")


def render(sc: Scenes) -> np.ndarray:
    """(N, S, S, 3) float32 images in [0, 1] for the scene parameters ``sc``."""
    s = IMAGE_SIZE
    y, x = np.mgrid[0:s, 0:s].astype(np.float32) + 0.5
    image = _background(sc, x, y)
    dx = x[None] - sc.centre[:, 0, None, None].astype(np.float32)
    dy = y[None] - sc.centre[:, 1, None, None].astype(np.float32)
    cos = np.cos(sc.angle)[:, None, None].astype(np.float32)
    sin = np.sin(sc.angle)[:, None, None].astype(np.float32)
    half = sc.half[:, None, None].astype(np.float32)
    u = (cos * dx + sin * dy) / half
    v = (-sin * dx + cos * dy) / half
    v = -v  # image rows grow downwards; shapes are defined with y up
    alpha = np.empty((len(sc), s, s), np.float32)
    for shape in np.unique(sc.shape):
        rows = sc.shape == shape
        distance = _shape_distance(int(shape), u[rows], v[rows])
        alpha[rows] = np.clip(0.5 - distance * half[rows], 0.0, 1.0)  # ~1 px anti-aliasing
    alpha = alpha[..., None]
    image = image * (1 - alpha) + sc.rgb[:, None, None, :] * alpha
    image += sc.noise * 0.02  # sensor noise
    return np.clip(image, 0.0, 1.0, out=image)


def render_uint8(sc: Scenes) -> np.ndarray:
    """(N, S, S, 3) uint8 images."""
    return (render(sc) * 255.0 + 0.5).astype(np.uint8)


_RENDERED: dict[tuple, tuple[np.ndarray, np.ndarray]] = {}  # key -> (image uint8 (S, S, 3), labels (5,))
_SCENE_BYTES = IMAGE_SIZE * IMAGE_SIZE * 3 + len(ATTRIBUTES) * 8


def rendered(seed: int, indices, composition: str = "all") -> tuple[np.ndarray, np.ndarray]:
    """``(images, labels)`` of scenes ``indices`` of stream ``seed``: (N, S, S, 3) uint8 and (N, 5) attribute
    indices in :data:`ATTRIBUTES` order -- ``render_uint8`` and ``scene_labels`` of ``sample_scenes``, drawing
    only the scenes not already in the per-process cache (in one vectorised batch)."""
    indices = [int(i) for i in np.asarray(indices, dtype=np.int64).reshape(-1)]
    keys = [(WORLD_VERSION, int(seed), composition, i) for i in indices]
    missing = list(dict.fromkeys(i for i, key in zip(indices, keys) if key not in _RENDERED))
    fresh = {}
    if missing:
        scenes = sample_scenes(seed, missing, composition)
        fresh = dict(zip(missing, zip(render_uint8(scenes), scene_labels(scenes))))
        room = max(0, (RENDER_CACHE_BYTES - len(_RENDERED) * _SCENE_BYTES) // _SCENE_BYTES)
        for index in missing[:room]:
            _RENDERED[(WORLD_VERSION, int(seed), composition, index)] = fresh[index]
    pairs = [_RENDERED.get(key) or fresh[i] for i, key in zip(indices, keys)]
    return np.stack([p[0] for p in pairs]), np.stack([p[1] for p in pairs])


def clear_render_cache() -> None:
    """Forget every cached scene (tests; or to give the memory back)."""
    _RENDERED.clear()


def caption(sc: Scenes, i: int, keep: np.ndarray | None = None, template: str = "a photo of a {}.") -> str:
    """The caption of scene ``i``: "a photo of a small red triangle in the top
    left on a striped background."

    ``keep`` is a boolean per attribute in :data:`ATTRIBUTES` order; a dropped
    shape becomes the generic noun "shape", the other attributes disappear.
    """
    keep = np.ones(len(ATTRIBUTES), bool) if keep is None else keep
    shape, colour, texture, size, position = (bool(k) for k in keep)
    words = []
    if size:
        words.append(SIZES[sc.size[i]])
    if colour:
        words.append(COLOURS[sc.colour[i]])
    words.append(SHAPES[sc.shape[i]] if shape else "shape")
    if position:
        words.append(f"in the {POSITIONS[sc.position[i]]}")
    if texture:
        words.append(f"on a {TEXTURES[sc.texture[i]]} background")
    return template.format(" ".join(words))


def pretraining_captions(sc: Scenes, seed: int, indices, keep_prob: float = 0.6, shape_prob: float = 0.85):
    """Captions with attributes dropped at random, as web alt-text does.

    Returns ``(captions, keep)``: ``keep`` is an (N, 5) bool array of which
    attributes each caption names (the shape is named with ``shape_prob``, every
    other attribute with ``keep_prob``). Pure in ``(seed, index)``, like scenes.
    """
    indices = np.asarray(indices, dtype=np.int64).reshape(-1)
    u = np.stack(
        [_rng(seed ^ _CAPTION_SALT, i).random(len(ATTRIBUTES)) for i in indices]
    )
    keep = u < keep_prob
    keep[:, 0] = u[:, 0] < shape_prob
    return [caption(sc, i, keep[i]) for i in range(len(sc))], keep


def scene_labels(sc: Scenes) -> np.ndarray:
    """(N, 5) attribute class indices in :data:`ATTRIBUTES` order."""
    return np.stack([sc.labels(a) for a in ATTRIBUTES], axis=1)
