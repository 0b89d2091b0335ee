"""Release 0.1.0's pickle path for the offers pyfunc (now in ``offers.family``).

MLflow stored 0.1.0's models with cloudpickle, which names classes by module path: this alias keeps
those models loadable. Remove this module once no 0.1.0 model is in use.
"""

from crm_analytics.models.offers.family import OffersPyfunc

__all__ = ["OffersPyfunc"]
