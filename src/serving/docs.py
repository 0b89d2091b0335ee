"""``/docs``: Swagger UI served from the installed package ``swagger-ui-bundle-v2``, never from a CDN.

FastAPI's own ``/docs`` page loads Swagger UI's script and styles from jsDelivr and its favicon from
fastapi.tiangolo.com, so every reader of the docs tells a third party they are looking, and a CDN
compromise runs script next to a pasted API key. Here the files come from the Python package (Swagger UI
5: OpenAPI 3.1) under ``/docs/static``, and the online spec validator badge is off. ReDoc is not served:
it has no packaged build among our dependencies.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from swagger_ui_bundle import swagger_ui_path

DOCS_PATH = "/docs"
STATIC_PATH = "/docs/static"


def install_docs(app: FastAPI) -> None:
    """Serve Swagger UI at ``/docs`` from the package (create the app with ``docs_url=None``)."""
    app.mount(STATIC_PATH, StaticFiles(directory=str(swagger_ui_path)), name="swagger-ui")

    @app.get(DOCS_PATH, include_in_schema=False)
    async def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title=f"{app.title}: API",
            swagger_js_url=f"{STATIC_PATH}/swagger-ui-bundle.js",
            swagger_css_url=f"{STATIC_PATH}/swagger-ui.css",
            swagger_favicon_url=f"{STATIC_PATH}/favicon-32x32.png",
            swagger_ui_parameters={"validatorUrl": None},
        )
