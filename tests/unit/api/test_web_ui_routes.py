"""The web UI's routes: pages answer the shell (or say how to build the UI), stay out of the
OpenAPI document, and need no key even with auth on (the pages ask for one); every other
path still does."""
from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette

from api.app import create_app
from api.openapi import openapi_document
from api.ui import PAGES, ui_built, ui_routes
from core.settings import Settings
from sinks.warehouse import Warehouse


class NoWarehouse:
    """The pages never query: any call would fail the test."""

    database = "none"

    def __getattr__(self, name: str) -> object:
        raise AssertionError(f"the UI routes must not touch the warehouse ({name})")


def app(keys: str = "") -> httpx.AsyncClient:
    settings = Settings.model_validate({"api": {"keys": keys}} if keys else {})
    warehouse: Warehouse = NoWarehouse()  # type: ignore[assignment]
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(settings, warehouse)), base_url="http://ui")


def test_pages_are_not_api_operations() -> None:
    paths = set(openapi_document()["paths"])
    assert not {p.split("{")[0].rstrip("/") or "/" for p in PAGES} & paths


@pytest.mark.asyncio
@pytest.mark.skipif(not ui_built(), reason="the web UI is not built (make ui)")
@pytest.mark.parametrize("keys, auth", [("", "off"), ("k1=acme", "required")], ids=["open", "keys"])
async def test_every_page_answers_the_shell_without_a_key(keys: str, auth: str) -> None:
    async with app(keys) as client:
        for path in ("/", "/dashboard", "/correlations", "/correlate/demo-1%2Fx", "/services", "/alerts"):
            page = await client.get(path)
            assert page.status_code == 200, path
            assert f'<meta name="ollystack-auth" content="{auth}">' in page.text
        script = await client.get("/ui/app.js")
        assert script.status_code == 200 and "javascript" in script.headers["content-type"]
        assert (await client.get("/ui/vendor/cytoscape.esm.min.js")).status_code == 200
        if keys:  # data stays behind the key, and so does every path not named open
            for path in ("/api/v1/correlations", "//api/v1/correlations", "/API/v1/services", "/internal"):
                assert (await client.get(path)).status_code == 401, path


@pytest.mark.asyncio
async def test_without_the_built_libraries_a_page_says_how_to_build_them(tmp_path: Path) -> None:
    routes = ui_routes(auth_required=False, vendor_dir=tmp_path / "vendor")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=Starlette(routes=routes)),
                                 base_url="http://ui") as client:
        page = await client.get("/correlate/x")
    assert page.status_code == 503 and "make ui" in page.text
