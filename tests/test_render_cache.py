"""The toy render cache returns exactly what fresh rendering gives, and renders each scene once."""

from __future__ import annotations

import numpy as np
import pytest

from caw_core.data import load_dataset
from caw_core.data import toyworld as tw


@pytest.fixture(autouse=True)
def empty_cache():
    tw.clear_render_cache()
    yield
    tw.clear_render_cache()


def count_renders(monkeypatch) -> list:
    drawn = []
    render = tw.render_uint8

    def spy(scenes):
        drawn.append(len(scenes))
        return render(scenes)

    monkeypatch.setattr(tw, "render_uint8", spy)
    return drawn


@pytest.mark.parametrize("composition", ["all", "seen"])
def test_cached_scenes_equal_fresh_rendering(composition):
    indices = [5, 0, 17, 5, 3]
    first = tw.rendered(2, indices, composition)
    again = tw.rendered(2, indices, composition)  # every scene now from the cache
    scenes = tw.sample_scenes(2, indices, composition)
    for images, labels in (first, again):
        np.testing.assert_array_equal(images, tw.render_uint8(scenes))
        np.testing.assert_array_equal(labels, tw.scene_labels(scenes))


def test_each_scene_is_rendered_once_per_process(monkeypatch):
    drawn = count_renders(monkeypatch)
    tw.rendered(2, range(8))
    tw.rendered(2, range(4, 12))
    assert drawn == [8, 4]  # the second call draws only the 4 new scenes, in one batch
    tw.rendered(3, range(4))  # another stream is another key
    assert drawn == [8, 4, 4]


def test_cache_stops_growing_at_its_budget(monkeypatch):
    monkeypatch.setattr(tw, "RENDER_CACHE_BYTES", 3 * tw._SCENE_BYTES)
    drawn = count_renders(monkeypatch)
    images, _ = tw.rendered(2, range(5))
    np.testing.assert_array_equal(images, tw.render_uint8(tw.sample_scenes(2, range(5))))
    tw.rendered(2, range(5))
    assert drawn[-1] == 2  # the two scenes past the budget were not kept


def test_every_toy_task_reads_its_label_off_the_shared_cached_scenes(monkeypatch):
    drawn = count_renders(monkeypatch)
    for task, attribute in (("toy-shape", "shape"), ("toy-texture", "texture")):
        data = load_dataset(task, split="test", image_size=64).data
        items = data.__getitems__([0, 1, 2])
        assert [label for _, label in items] == list(tw.sample_scenes(2, range(3)).labels(attribute))
        assert data[1][1] == items[1][1]
    assert drawn == [3]  # the second task and the single-item read hit the cache
