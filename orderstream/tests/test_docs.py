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


# -- The README and docs/: a short README, links that lead somewhere ------------------------
# Pure file reads (no database, no client): conftest.py sorts them into the `unit` layer.
REPOSITORY = Path(__file__).resolve().parents[2]
README = REPOSITORY / "README.md"
README_MAX_LINES = 250
# [text](target) and ![alt](target), with an optional "title"; the target has no spaces.
MARKDOWN_LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
FENCED_BLOCK = re.compile(r"^(```|~~~).*?^\1[^\n]*$", re.M | re.S)
INLINE_CODE = re.compile(r"(`+)(?:(?!\1).)+?\1", re.S)
HEADING = re.compile(r"^ {0,3}(#{1,6})\s+(.+?)\s*#*\s*$", re.M)
EXTERNAL = re.compile(r"^(?:[a-z][a-z0-9+.-]*:|//)", re.I)


def doc_files() -> list[Path]:
    return [README, *sorted((REPOSITORY / "docs").rglob("*.md"))]


def without_code(text: str) -> str:
    """The Markdown outside code blocks and code spans, where links and headings count."""
    return INLINE_CODE.sub("", FENCED_BLOCK.sub("", text))


def github_slug(heading: str) -> str:
    """The anchor GitHub gives a heading: its text (links reduced to their text), lowercase,
    every character but letters, digits, spaces, '-' and '_' dropped, spaces made '-'."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading).strip().lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors_of(path: Path) -> set[str]:
    """Every heading's anchor in a Markdown file; a repeated one also with -1, -2, ..."""
    anchors: set[str] = set()
    seen: dict[str, int] = {}
    text = FENCED_BLOCK.sub("", path.read_text())
    for _, heading in HEADING.findall(text):
        slug = github_slug(heading)
        count = seen.get(slug, 0)
        anchors.add(slug if count == 0 else f"{slug}-{count}")
        seen[slug] = count + 1
    return anchors


def broken_links(path: Path) -> list[str]:
    """The relative links of one Markdown file whose file or heading does not exist."""
    broken = []
    for target in MARKDOWN_LINK.findall(without_code(path.read_text())):
        if EXTERNAL.match(target):
            continue
        file_part, _, anchor = target.partition("#")
        resolved = (path.parent / file_part).resolve() if file_part else path
        if not resolved.is_relative_to(REPOSITORY) or not resolved.exists():
            broken.append(f"{target}: no such file")
        elif anchor and resolved.suffix == ".md" and anchor not in anchors_of(resolved):
            broken.append(f"{target}: no such heading")
    return broken


def test_the_readme_is_short():
    """Was 1,118 lines, a reference manual: the reference lives in docs/ now."""
    lines = README.read_text().splitlines()
    assert len(lines) <= README_MAX_LINES, f"README.md has {len(lines)} lines"


@pytest.mark.parametrize("path", doc_files(), ids=lambda path: str(path.relative_to(REPOSITORY)))
def test_every_relative_link_leads_to_a_file_and_heading_of_the_repository(path):
    assert broken_links(path) == []


@pytest.mark.parametrize("path", doc_files(), ids=lambda path: str(path.relative_to(REPOSITORY)))
def test_no_doc_points_outside_the_repository(path):
    """Was: links to ../shared/SPEC.md, outside the repository; the contract is docs/contract.md."""
    assert "../shared" not in path.read_text()


def test_the_contract_is_in_the_repository():
    assert README.read_text().count("(docs/contract.md)") >= 1
    assert (REPOSITORY / "docs" / "contract.md").is_file()


@pytest.mark.parametrize(
    "heading, slug",
    [
        ("HTTP API (port 8080)", "http-api-port-8080"),
        ("OrderStream — product spec", "orderstream--product-spec"),
        ("The worker alone: `make bench-worker`", "the-worker-alone-make-bench-worker"),
        (
            "Upsert rules (applied by the worker, pre-checked by the API)",
            "upsert-rules-applied-by-the-worker-pre-checked-by-the-api",
        ),
        ("See [Metrics](operations.md#metrics) here", "see-metrics-here"),
        ("snake_case stays", "snake_case-stays"),
    ],
)
def test_anchors_follow_githubs_rules(heading, slug):
    assert github_slug(heading) == slug


def test_a_missing_file_or_heading_is_reported(tmp_path, monkeypatch):
    """The check itself finds what it is there to find."""
    monkeypatch.setattr(f"{__name__}.REPOSITORY", tmp_path)
    (tmp_path / "target.md").write_text("# Title\n\n## A part\n\n```\n# not a heading\n```\n")
    page = tmp_path / "page.md"
    page.write_text(
        "[ok](target.md#a-part) [ok](#here) [ext](https://example.org/x) `[code](nowhere.md)`\n"
        "[gone](missing.md) [no heading](target.md#not-a-heading) [out](../outside.md)\n"
        "## Here\n"
    )
    assert broken_links(page) == [
        "missing.md: no such file",
        "target.md#not-a-heading: no such heading",
        "../outside.md: no such file",
    ]
