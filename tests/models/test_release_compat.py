"""Models registered by release 0.1.0 still load and predict as they did.

MLflow pickled 0.1.0's pyfuncs with cloudpickle, which names classes by module path
(``crm_analytics.models.pyfunc.CLVPyfunc``, ``crm_analytics.models.clv.CLVModel``,
``crm_analytics.models.churn.ChurnModel``); the restructure moved them. The fixtures are the
``MLmodel``, ``python_model.pkl`` and ``input_example.json`` of a CLV and a churn model that 0.1.0's
``train_clv``/``train_churn`` logged (CDNOW_sample, cutoff 1997-09-30, 273-day horizon); the
expected numbers are what 0.1.0's code predicted for those input examples.
"""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import pandas as pd
import pytest

RELEASE_0_1_0 = Path(__file__).parent / "data" / "release_0_1_0"

EXPECTED = {
    "clv": {
        "p_alive": [0.35825246715166686, 0.33570300786875756, 0.5050701303521065],
        "expected_purchases": [0.15402123805798104, 0.1362968149523461, 0.5468747279335231],
        "expected_spend": [35.17037133045398, 35.17037133045398, 25.573877850836443],
        "clv": [6.469137748701213, 5.735218215810789, 16.760024024687286],
        "clv_low": [0.0, 0.0, 0.0],
        "clv_high": [49.3419822032942, 53.16527111601189, 88.22222749414284],
    },
    "churn": {"churn_probability": [0.6296803652968038, 0.738290775247297, 0.6862193362193363]},
}


def input_example(model: str) -> pd.DataFrame:
    logged = json.loads((RELEASE_0_1_0 / model / "input_example.json").read_text())
    return pd.DataFrame(logged["data"], columns=logged["columns"])


@pytest.mark.parametrize("model", ["clv", "churn"])
def test_a_release_0_1_0_model_loads_and_predicts_as_it_did(model: str) -> None:
    loaded = mlflow.pyfunc.load_model(str(RELEASE_0_1_0 / model))
    predicted = loaded.predict(input_example(model))
    expected = pd.DataFrame(EXPECTED[model])
    pd.testing.assert_frame_equal(predicted.reset_index(drop=True), expected, rtol=1e-9)


def test_the_fixture_stays_small() -> None:
    files = [path for path in RELEASE_0_1_0.rglob("*") if path.is_file()]
    assert sum(path.stat().st_size for path in files) < 1_000_000
