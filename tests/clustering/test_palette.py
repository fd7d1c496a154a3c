"""The segments' colours: told apart by every reader up to the largest K, and kept for life."""

from __future__ import annotations

import itertools

import pytest

from clustering.forms import RetrainForm
from clustering.models import Cluster, Segment
from clustering.palette import PALETTE, SHAPES, colour_for_new_segment
from tests.clustering.colour_vision import VISIONS, difference
from tests.clustering.helpers import train

LARGEST_K = RetrainForm.base_fields["k"].max_value
PAIRS = list(itertools.combinations(PALETTE, 2))


def worst(pairs) -> tuple[float, str]:
    """The smallest difference over the pairs and every kind of vision, and where."""
    return min(
        (value, f"{a.hex} / {b.hex} ({vision})")
        for a, b in pairs
        for vision, value in difference(a.hex, b.hex).items()
    )


def test_the_palette_has_a_colour_and_a_marker_for_every_segment_of_the_largest_k():
    assert len(PALETTE) >= LARGEST_K == 20
    assert len({c.hex.upper() for c in PALETTE}) == len(PALETTE)
    assert {c.shape for c in PALETTE} == set(SHAPES)


def test_two_colours_with_the_same_marker_are_far_apart_for_every_kind_of_vision():
    same_shape = [(a, b) for a, b in PAIRS if a.shape == b.shape]

    value, where = worst(same_shape)

    assert value >= 13, where


def test_any_two_colours_differ_for_every_kind_of_vision():
    value, where = worst(PAIRS)

    assert value >= 7, where


def test_up_to_eight_segments_are_told_apart_by_colour_alone():
    value, where = worst(itertools.combinations(PALETTE[:8], 2))

    assert value >= 10, where


@pytest.mark.parametrize("vision", VISIONS)
def test_every_colour_stands_out_on_the_white_page(vision):
    assert min(difference(c.hex, "#FFFFFF")[vision] for c in PALETTE) >= 20


def test_a_new_segment_takes_the_first_colour_that_no_segment_has():
    assert colour_for_new_segment(in_run={0, 1}, held=[0, 1, 2, 3, 5]) == 4
    assert colour_for_new_segment() == 0


def test_with_every_colour_held_a_new_segment_still_avoids_the_colours_of_its_run():
    held = [c.index for c in PALETTE] + [0, 1, 2]  # 0, 1 and 2 are held twice

    assert colour_for_new_segment(in_run={3, 4}, held=held) == 5
    assert colour_for_new_segment(in_run=set(range(19)), held=held) == 19


# --------------------------------------------------------------------------- for life


@pytest.fixture
def colours(trained) -> dict[str, int]:
    return dict(Segment.objects.values_list("name", "colour_index"))


def test_the_segments_of_a_run_have_different_colours(colours):
    assert len(colours) == 4
    assert sorted(colours.values()) == [0, 1, 2, 3]


def test_a_segment_keeps_its_colour_through_retrains_and_new_segments_take_free_ones(colours):
    run = train(k=6)
    train(k=4)

    in_six = Cluster.objects.filter(run=run).select_related("segment")
    now = dict(Segment.objects.values_list("name", "colour_index"))
    assert {name: now[name] for name in colours} == colours
    six = [cluster.segment.colour_index for cluster in in_six]
    assert len(set(six)) == 6
    new = [c.segment.colour_index for c in in_six if c.segment.name not in colours]
    assert new and not set(new) & set(colours.values())


def test_a_segment_created_by_hand_gets_the_first_free_colour(colours):
    segment = Segment.objects.create(name="Made in the admin", archetype="manual")

    assert segment.colour_index == 4
