"""`/ledger/v1/docs`: the OpenAPI document, browsable (Swagger UI from the `swagger-ui-bundle` package, served
from this process: no CDN). The page's own script is a file too, so the Content-Security-Policy needs no
inline script."""

from __future__ import annotations

from pathlib import Path

import falcon
import swagger_ui_bundle

VENDOR = Path(swagger_ui_bundle.swagger_ui_path)
FILES = {"swagger-ui.css": "text/css; charset=utf-8", "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
         "swagger-ui-standalone-preset.js": "text/javascript; charset=utf-8",
         "favicon-32x32.png": "image/png", "init.js": "text/javascript; charset=utf-8"}
INIT = """window.addEventListener("load", () => {
  window.ui = SwaggerUIBundle({ url: "%s/openapi.json", dom_id: "#swagger-ui", deepLinking: true,
    presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset], layout: "StandaloneLayout" });
});
"""
PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>taskledger API</title>
<link rel="stylesheet" href="%(base)s/docs/swagger-ui.css"><link rel="icon" href="%(base)s/docs/favicon-32x32.png">
</head><body><div id="swagger-ui"></div>
<script src="%(base)s/docs/swagger-ui-bundle.js"></script>
<script src="%(base)s/docs/swagger-ui-standalone-preset.js"></script>
<script src="%(base)s/docs/init.js"></script>
</body></html>
"""


class ApiDocs:
    """The page (no credentials needed: the OpenAPI document is public too)."""

    def __init__(self, base: str) -> None:
        self.base = base

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.content_type = falcon.MEDIA_HTML
        resp.text = PAGE % {"base": self.base}

    def on_get_file(self, req: falcon.Request, resp: falcon.Response, name: str) -> None:
        if name not in FILES:
            raise falcon.HTTPNotFound()
        resp.content_type = FILES[name]
        resp.set_header("Cache-Control", "public, max-age=3600")
        resp.data = (INIT % self.base).encode() if name == "init.js" else (VENDOR / name).read_bytes()
