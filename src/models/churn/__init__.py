"""Churn: a calibrated classifier on features plus the BTYD model's outputs (``model``), the pyfunc.

The re-export keeps release 0.1.0's pickle path (``crm_analytics.models.churn.ChurnModel``, then a
module) loadable; it may go once no 0.1.0 model is in use.
"""

from crm_analytics.models.churn.model import ChurnModel

__all__ = ["ChurnModel"]
