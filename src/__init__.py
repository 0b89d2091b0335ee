"""crm-analytics: customer analytics from purchase history (import package ``crm_analytics``)."""

__version__ = "0.1.0"
