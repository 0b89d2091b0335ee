"""The ASGI app for ``uvicorn crm_analytics.serving.asgi:app`` (each worker builds its own from settings)."""

from crm_analytics.serving.app import create_app
from crm_analytics.settings import load_settings

app = create_app(load_settings())
