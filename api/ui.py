"""The web UI (Correlation Explorer, recent correlations, service map, alerts, dashboard): one
HTML shell for every page, routed in the browser, and its static files, served by the API."""
from __future__ import annotations

from pathlib import Path

from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

WEB_DIR = Path(__file__).parent / "web"
# Built by `make ui` (npm ci in ui/, then a copy): the chart and graph libraries the pages import.
VENDOR_DIR = WEB_DIR / "vendor"
VENDOR_FILES = ("uPlot.esm.js", "uPlot.min.css", "cytoscape.esm.min.js")
PAGES = ("/", "/dashboard", "/correlations", "/correlate/{correlation_id:path}", "/services", "/alerts")
_FIXED_PAGES = frozenset(p for p in PAGES if "{" not in p)
_OPEN_PREFIXES = tuple(p.split("{", 1)[0] for p in PAGES if "{" in p) + ("/ui/",)
NOT_BUILT = ("The OllyStack web UI is not built: its chart and graph libraries are missing from {folder}. "
             "Run `make ui` in the repository (it needs Node.js and npm), then reload. "
             "The query API under /api/v1 works without it.\n")
AUTH_MARK = "{{auth}}"


def is_ui_path(path: str) -> bool:
    """Whether ``path`` is one of the UI's pages or static files (served without a key)."""
    return path in _FIXED_PAGES or path.startswith(_OPEN_PREFIXES)


def ui_built(vendor_dir: Path = VENDOR_DIR) -> bool:
    """Whether `make ui` has put every library the pages import in place."""
    return all((vendor_dir / name).is_file() for name in VENDOR_FILES)


def page_html(auth_required: bool) -> str:
    """The shell every page shares; it tells the browser whether to ask for an API key before
    its first request, so a page opened without one shows the sign-in prompt at once."""
    shell = (WEB_DIR / "index.html").read_text(encoding="utf-8")
    return shell.replace(AUTH_MARK, "required" if auth_required else "off")


def ui_routes(auth_required: bool, vendor_dir: Path = VENDOR_DIR) -> list[BaseRoute]:
    """The page routes (kept out of the OpenAPI document: they are not API operations) and
    /ui/ for the static files. Without the built libraries every page answers 503 saying how
    to build them; the API itself is unaffected."""

    async def page(request: Request) -> Response:
        if not ui_built(vendor_dir):
            return PlainTextResponse(NOT_BUILT.format(folder=vendor_dir), status_code=503)
        return HTMLResponse(page_html(auth_required), headers={"Cache-Control": "no-cache"})

    return [*(Route(path, page, methods=["GET"], include_in_schema=False) for path in PAGES),
            Mount("/ui", app=StaticFiles(directory=WEB_DIR, check_dir=False), name="ui")]
