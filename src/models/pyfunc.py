"""Release 0.1.0's pickle paths for the CLV and churn pyfuncs (now in ``clv.family`` and ``churn.family``).

MLflow stored 0.1.0's models with cloudpickle, which names classes by module path: these aliases keep
those models loadable. Remove this module once no 0.1.0 model is in use.
"""

from crm_analytics.models.churn.family import ChurnPyfunc
from crm_analytics.models.clv.family import CLVPyfunc

__all__ = ["CLVPyfunc", "ChurnPyfunc"]
