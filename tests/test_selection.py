"""The selection rules on hand-made trails: offline argmax, online walk, the incremental walk."""

from __future__ import annotations

import math
import subprocess
import sys

import pytest

from medseg.selection import (
    MAIN_VARIANTS,
    Variant,
    main_variant,
    offline_choice,
    online_choice,
    online_walk,
)

EPOCHS = [0, 1, 5, 20, 50, 100, 150, 200, 250, 300]


def test_main_variant_depends_on_the_mode():
    assert main_variant("full") == Variant("cosine", 0.5, "second_to_last", pooled=False)
    assert main_variant("decoder") == Variant("cosine", 0.5, "second_to_last", pooled=True)
    assert MAIN_VARIANTS == {"full": main_variant("full"), "decoder": main_variant("decoder")}
    with pytest.raises(ValueError, match="full, decoder"):
        main_variant("frozen")


def test_offline_is_the_argmax_with_scratch_included():
    scores = [0.9, 0.2, 0.3, 0.5, 0.4, 0.1, 0.1, 0.1, 0.1, 0.1]
    assert offline_choice(EPOCHS, scores) == 0
    scores[0] = 0.0
    assert offline_choice(EPOCHS, scores) == 20


def test_offline_ties_go_to_the_earliest_checkpoint():
    assert offline_choice([0, 1, 5, 300], {0: 0.7, 1: 0.2, 5: 0.7, 300: 0.7}) == 0
    assert offline_choice([300, 5, 1], {300: 0.4, 5: 0.4, 1: 0.1}) == 5  # order of the list does not matter


def test_offline_skips_unknown_scores_and_refuses_none():
    assert offline_choice([0, 1, 5], {0: math.nan, 1: 0.2, 5: 0.1}) == 1
    with pytest.raises(ValueError, match="no checkpoint"):
        offline_choice([0, 1], {})


def test_online_falls_at_the_first_step():
    chosen, trail = online_choice(EPOCHS, {0: 0.1, 1: 0.5, 5: 0.4, 20: 0.9, 50: 0.95})
    assert chosen == 1
    assert trail == (1, 5)
    assert online_walk(EPOCHS, {1: 0.5, 5: 0.4}).pretrained_epochs == 5


def test_online_without_a_fall_keeps_the_last_checkpoint():
    scores = {e: e / 1000 for e in EPOCHS}
    chosen, trail = online_choice(EPOCHS, scores)
    assert chosen == 300
    assert trail == tuple(EPOCHS[1:])


def test_online_ignores_the_scratch_encoder():
    # The scratch encoder is the best by far; the offline rule takes it, the online one never looks at it.
    scores = {0: 5.0, 1: 0.1, 5: 0.2, 20: 0.3, 50: 0.25}
    assert offline_choice(EPOCHS[:5], scores) == 0
    assert online_choice(EPOCHS[:5], scores) == (20, (1, 5, 20, 50))
    assert online_walk(EPOCHS, {}).needed == 1  # scratch's score is never asked for


def test_online_stops_on_an_equal_score():
    assert online_choice([1, 5, 20], [0.3, 0.3, 0.9]) == (1, (1, 5))


def test_online_stops_in_the_middle():
    assert online_choice(EPOCHS, [0, 0.1, 0.2, 0.3, 0.4, 0.35, 0.9, 0.9, 0.9, 0.9]) == (50, (1, 5, 20, 50, 100))


def test_online_refuses_an_unknown_score_on_its_path():
    with pytest.raises(ValueError, match="epoch 20"):
        online_choice(EPOCHS, {1: 0.1, 5: 0.2})
    # a missing score after the stop does not matter
    assert online_choice(EPOCHS, {1: 0.3, 5: 0.2}) == (1, (1, 5))
    with pytest.raises(ValueError, match="epoch > 0"):
        online_walk([0], {0: 1.0})


@pytest.mark.parametrize(
    "scores",
    [
        [0.5, 0.1, 0.2, 0.3, 0.25, 0.9, 0.9, 0.9, 0.9, 0.9],
        [0.5, 0.3, 0.2, 0.1, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
        [e / 1000 for e in EPOCHS],
        [0.1, 0.4, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.1],
    ],
)
def test_incremental_walk_agrees_with_the_full_walk(scores):
    full = dict(zip(EPOCHS, scores))
    known: dict[int, float] = {}
    asked = []
    while not (walk := online_walk(EPOCHS, known)).finished:
        assert walk.needed not in known
        asked.append(walk.needed)
        known[walk.needed] = full[walk.needed]
        assert len(asked) <= len(EPOCHS)
    chosen, trail = online_choice(EPOCHS, full)
    assert (walk.chosen, walk.trail) == (chosen, trail)
    assert tuple(asked) == trail  # it asked for exactly the checkpoints on its trail, in order
    assert walk.pretrained_epochs == max(trail)


def test_what_the_workflow_imports_imports_nothing_heavy():
    """workflow/rules/common.smk reads these on every dry run and cluster job."""
    modules = "medseg.selection, medseg.names, medseg.paper"
    code = f"import sys, {modules}; print(sorted({{'torch', 'pandas', 'numpy'}} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
