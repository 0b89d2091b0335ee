"""Feature fingerprints: what a model saw, recorded without its rows."""

from __future__ import annotations

import hashlib
import json

import pandas as pd


def feature_fingerprint(features: pd.DataFrame) -> dict[str, str]:
    """The feature table's schema and a content hash: enough to know what a model saw, without its rows."""
    schema = {str(c): str(t) for c, t in features.dtypes.items()}
    content = pd.util.hash_pandas_object(features.reset_index(drop=True), index=False).to_numpy().tobytes()
    return {"schema": json.dumps(schema), "content_sha256": hashlib.sha256(content).hexdigest()}
