"""PySpark's printed forms and figures that need no cluster (issue 15)."""

from __future__ import annotations

import pytest

from aiospark.lineage import StorageLevel
from aiospark.statcounter import StatCounter


@pytest.mark.parametrize(("level", "text"), [
    (StorageLevel.MEMORY_ONLY, "Memory Deserialized 1x Replicated"),
    (StorageLevel.MEMORY_ONLY_SER, "Memory Serialized 1x Replicated"),
    (StorageLevel.MEMORY_AND_DISK, "Disk Memory Deserialized 1x Replicated"),
    (StorageLevel.MEMORY_AND_DISK_SER, "Disk Memory Serialized 1x Replicated"),
    (StorageLevel.DISK_ONLY, "Disk Serialized 1x Replicated"),
    (StorageLevel(True, True, False, 2), "Disk Memory Serialized 2x Replicated"),
])
def test_str_of_a_storage_level_is_pysparks_and_repr_shows_the_fields(level, text):
    assert str(level) == text
    assert repr(level).startswith("StorageLevel(use_disk=")
    assert f"{level}" == text


def test_as_dict_gives_population_figures_unless_sample_is_asked():
    stats = StatCounter([1.0, 2.0, 3.0, 4.0])
    population, sample = stats.as_dict(), stats.as_dict(sample=True)
    assert population["variance"] == pytest.approx(1.25)
    assert sample["variance"] == pytest.approx(5 / 3)
    assert population["stdev"] == pytest.approx(1.25 ** 0.5)
    assert sample["stdev"] == pytest.approx((5 / 3) ** 0.5)
    assert {k: v for k, v in population.items() if k not in ("stdev", "variance")} == {
        "count": 4, "mean": 2.5, "sum": 10.0, "min": 1.0, "max": 4.0
    }
