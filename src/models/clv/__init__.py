"""Customer lifetime value: BTYD purchases and Gamma-Gamma spend (``model``), evaluation, the pyfunc.

The re-exports keep release 0.1.0's pickle paths (``crm_analytics.models.clv.CLVModel``, then a module)
loadable; they may go once no 0.1.0 model is in use.
"""

from crm_analytics.models.clv.model import CLVModel, SpendExclusions

__all__ = ["CLVModel", "SpendExclusions"]
