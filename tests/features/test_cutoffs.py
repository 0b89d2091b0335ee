"""The feature table at many cutoffs from one compiled statement is, frame for frame, what compiling it
at each cutoff gives (values and dtypes), on the demo chain (stays, channels, extras) and on CDNOW."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import pandas as pd
import pytest

from crm_analytics.features import cutoffs
from crm_analytics.features.build import FeatureConfig, feature_table
from crm_analytics.warehouse import Warehouse

DEMO_CUTOFFS = [date(2023, 3, 31), date(2024, 2, 29), date(2024, 12, 31), date(2025, 6, 30)]
CDNOW_CUTOFFS = [date(1997, 3, 31), date(1997, 9, 30), date(1998, 6, 30)]


@pytest.mark.parametrize(("name", "days"), [("demo", DEMO_CUTOFFS), ("cdnow_sample", CDNOW_CUTOFFS)])
def test_feature_frames_equal_one_compile_per_cutoff(
    request: pytest.FixtureRequest, name: str, days: list[date]
) -> None:
    warehouse: Warehouse = request.getfixturevalue(name)
    con = warehouse.ibis
    config = FeatureConfig(as_of=days[0]).resolved(con)

    assert cutoffs._parameterised(con, feature_table(con, replace(config, as_of=cutoffs.SENTINEL)))
    frames = list(cutoffs.feature_frames(con, config, days))

    assert len(frames) == len(days)
    for day, frame in zip(days, frames, strict=True):
        expected = feature_table(con, replace(config, as_of=day)).execute()
        assert len(expected) > 0
        pd.testing.assert_frame_equal(frame, expected, obj=str(day))


def test_feature_frames_need_a_resolved_config(demo: Warehouse) -> None:
    with pytest.raises(ValueError, match="resolve it first"):
        next(cutoffs.feature_frames(demo.ibis, FeatureConfig(as_of=DEMO_CUTOFFS[0]), DEMO_CUTOFFS))
