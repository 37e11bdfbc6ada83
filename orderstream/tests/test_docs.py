"""Swagger UI (/docs) and ReDoc (/redoc) work without internet: every asset they load is a
static file of the project (drf-spectacular-sidecar), served by WhiteNoise."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.staticfiles import finders

# src= and href= of the page's scripts, stylesheets, icons and preconnects.
ASSET = re.compile(r'<(?:script|link)\b[^>]*?\b(?:src|href)="([^"]*)"', re.I)
EXPECTED_ASSETS = {
    "/docs": {
        "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui.css",
        "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js",
        "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-standalone-preset.js",
        "/static/drf_spectacular_sidecar/swagger-ui-dist/favicon-32x32.png",
    },
    "/redoc": {"/static/drf_spectacular_sidecar/redoc/bundles/redoc.standalone.js"},
}
# An absolute or protocol-relative URL: anything that would leave the server.
OTHER_HOST = re.compile(r'(?:https?:|="|\(\s*["\']?)//[^"\'\s)]*', re.I)


def assets_of(page: str) -> set[str]:
    return set(ASSET.findall(page))


@pytest.mark.parametrize("path", ["/docs", "/redoc"])
def test_the_docs_page_loads_nothing_from_another_host(client, path):
    """Was: Swagger UI from cdn.jsdelivr.net at @latest (a blank page offline), no /redoc."""
    page = client.get(path)
    assert page.status_code == 200
    text = page.content.decode()
    assert not OTHER_HOST.search(text), OTHER_HOST.findall(text)
    assert EXPECTED_ASSETS[path] <= assets_of(text)


@pytest.mark.parametrize("path", ["/docs", "/redoc"])
def test_every_asset_of_the_docs_pages_is_served(client, path):
    """WhiteNoise serves the sidecar's files (from the app's static folder in tests, from
    STATIC_ROOT after collectstatic in the image)."""
    assets = assets_of(client.get(path).content.decode())
    assert assets == EXPECTED_ASSETS[path]
    for url in assets:
        response = client.get(url)
        assert response.status_code == 200, url
        source = Path(finders.find(url.removeprefix(settings.STATIC_URL)))
        assert b"".join(response.streaming_content) == source.read_bytes(), url


def test_both_pages_read_the_schema_of_this_server(client):
    assert 'url: "/api/schema/",' in client.get("/docs").content.decode()
    assert '<redoc spec-url="/api/schema/">' in client.get("/redoc").content.decode()
