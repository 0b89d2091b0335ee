"""The cheap check of a logged model's requirements against this environment."""

from __future__ import annotations

import logging
from importlib import metadata
from pathlib import Path

import pytest

from crm_analytics.models.requirements import unmet, warn_if_unmet


def test_unmet_names_what_this_environment_does_not_satisfy() -> None:
    numpy = metadata.version("numpy")
    lines = [
        f"numpy=={numpy}",
        "numpy>=999",
        "pandas>=1.0  # a comment",
        "no-such-distribution-here==1.0",
        "-r other.txt",
        "--index-url https://example.invalid/simple",
        "",
        "numpy<1; python_version < '3.0'",  # not for this Python
    ]
    assert unmet(lines) == [
        f"numpy>=999 (installed: {numpy})",
        "no-such-distribution-here==1.0 (not installed)",
    ]


def test_warn_if_unmet_logs_the_model_and_each_problem(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("scikit-learn>=999\n")
    with caplog.at_level(logging.WARNING):
        assert warn_if_unmet("crm-churn version 3", requirements) != []
    assert "crm-churn version 3" in caplog.text
    assert "scikit-learn>=999" in caplog.text
    assert warn_if_unmet("crm-churn version 3", tmp_path / "missing.txt") == []
