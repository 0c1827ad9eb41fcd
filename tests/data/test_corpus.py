import numpy as np
import pytest

from anomalib_dapo.data.corpus import NORMAL, make_views, product_states, render_view
from anomalib_dapo.data.synthetic import CATEGORIES, DEFECT_KINDS, paintable_kinds, render_any


def test_the_generator_paints_seven_kinds_and_missing_only_where_there_are_parts():
    assert len(DEFECT_KINDS) >= 7
    assert "missing" not in paintable_kinds("tile")
    assert set(paintable_kinds("disc")) == set(DEFECT_KINDS)
    with pytest.raises(ValueError, match="cannot paint 'missing' on 'tile'"):
        render_any("tile", "missing", 64, np.random.default_rng(0))


@pytest.mark.parametrize("kind", ["crack", "burn", "contamination"])
@pytest.mark.parametrize("product", CATEGORIES)
def test_a_new_kind_changes_exactly_the_pixels_of_its_mask(product, kind):
    normal, empty = render_any(product, None, 128, np.random.default_rng(3))
    image, mask = render_any(product, kind, 128, np.random.default_rng(3))
    assert not empty.any()
    assert mask.sum() >= 128 // 8
    assert np.array_equal(image[~mask], normal[~mask])
    assert (np.abs(image[mask].astype(int) - normal[mask]).sum(axis=-1) > 0).mean() > 0.9


def test_views_are_seeded_grouped_by_state_and_show_their_defect():
    views = make_views(2, seed=5)
    again = make_views(2, seed=5)
    assert np.array_equal(views.images, again.images)
    assert np.array_equal(views.masks, again.masks)
    assert not np.array_equal(views.images, make_views(2, seed=6).images)
    expected = [(p, s) for p in CATEGORIES for s in product_states(p) for _ in range(2)]
    assert list(zip(views.products, views.kinds, strict=True)) == expected
    kinds = np.asarray(views.kinds)
    assert not views.masks[kinds == NORMAL].any()
    assert all(mask.sum() >= 4 for mask in views.masks[kinds != NORMAL])
    assert views.images.shape == (len(expected), 64, 64, 3)


def test_a_view_holds_its_defect_away_from_the_window_edge():
    image, mask = render_view("tile", "hole", np.random.default_rng(0), size=64, zoom=2)
    assert image.shape == (64, 64, 3)
    assert mask[8:-8, 8:-8].any()


def test_views_of_a_kind_subset_keep_normal_first():
    assert product_states("tile", ("missing", "stain")) == (NORMAL, "stain")
