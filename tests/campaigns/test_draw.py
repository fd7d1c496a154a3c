"""The audience draw: reproducible from its seed, stratified by segment."""

from __future__ import annotations

import math

import numpy as np

from campaigns.draw import control_count, draw_groups


def _audience(sizes):
    strata = np.concatenate([np.full(n, k) for k, n in enumerate(sizes)])
    pks = np.random.default_rng(0).permutation(10 * len(strata))[: len(strata)] + 1
    return pks, strata


def test_the_same_seed_gives_the_same_groups_whatever_the_order():
    pks, strata = _audience([500, 300, 40])
    _numbers, control = draw_groups(pks, strata, seed=42, control_share=0.1)
    order = np.random.default_rng(1).permutation(len(pks))

    _numbers, shuffled = draw_groups(pks[order], strata[order], seed=42, control_share=0.1)

    assert (shuffled == control[order]).all()


def test_another_seed_gives_other_groups():
    pks, strata = _audience([500])
    _n, first = draw_groups(pks, strata, seed=1, control_share=0.1)
    _n, second = draw_groups(pks, strata, seed=2, control_share=0.1)

    assert (first != second).any()


def test_every_segment_gets_its_share_of_control():
    sizes = [500, 300, 41, 7]
    pks, strata = _audience(sizes)

    _n, control = draw_groups(pks, strata, seed=5, control_share=0.1)

    for stratum, size in enumerate(sizes):
        assert control[strata == stratum].sum() == control_count(size, 0.1)
    assert [control_count(n, 0.1) for n in sizes] == [50, 30, 4, 1]


def test_control_share_over_many_seeds_is_within_binomial_error():
    # Which customers are drawn is random: each customer's chance of control is the share.
    pks, strata = _audience([200, 100])
    seeds = 400
    hits = np.zeros(len(pks))
    for seed in range(seeds):
        hits += draw_groups(pks, strata, seed=seed, control_share=0.1)[1]

    share = hits / seeds
    error = 4 * math.sqrt(0.1 * 0.9 / seeds)  # four standard errors per customer
    assert (np.abs(share - 0.1) < error).mean() > 0.99
    assert abs(share.mean() - 0.1) < 1e-9
