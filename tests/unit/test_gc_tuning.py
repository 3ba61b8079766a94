"""``src/gc_tuning.py``: a serving process freezes what start-up built and sets the
collector's thresholds from the settings."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from gc_tuning import DEFAULT_THRESHOLDS, tune_gc
from settings import Settings


@pytest.fixture
def restored_gc() -> Iterator[None]:
    thresholds = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)


def test_the_settings_default_to_a_frozen_start_and_rarer_young_collections() -> None:
    settings = Settings.from_env({})
    assert settings.gc_freeze is True
    assert settings.gc_thresholds == DEFAULT_THRESHOLDS == (10_000, 50, 100)
    assert Settings.from_env({"RWA_GC_THRESHOLDS": "700, 10, 10"}).gc_thresholds == (700, 10, 10)


def test_tune_gc_freezes_what_lives_and_sets_the_thresholds(restored_gc: None) -> None:
    kept = [[n] for n in range(1000)]  # lives on: frozen
    tune_gc(freeze=True, thresholds=(20_000, 20, 30))
    assert gc.get_threshold() == (20_000, 20, 30)
    assert gc.get_freeze_count() >= len(kept)
    assert gc.isenabled()
    # frozen objects are out of the collector's generations (no pass walks them again);
    # what is made afterwards is tracked as usual
    later = [[n] for n in range(10)]
    tracked = {id(o) for o in gc.get_objects()}
    assert not any(id(item) in tracked for item in kept)
    assert all(id(item) in tracked for item in later)


def test_tune_gc_without_freezing_only_sets_the_thresholds(restored_gc: None) -> None:
    gc.unfreeze()
    tune_gc(freeze=False, thresholds=(5_000, 10, 10))
    assert gc.get_freeze_count() == 0
    assert gc.get_threshold() == (5_000, 10, 10)
