"""/docs and /redoc load nothing from another host: every asset is served by the server itself."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

import pytest

from .conftest import World

BASE = "http://testserver"
# A URL in running text: scheme-qualified, or protocol-relative (//host/...).
URL_IN_TEXT = re.compile(r"""(?:https?:)?//[A-Za-z0-9.-]+[^\s"'<>)]*""")
CSS_URL = re.compile(r"""url\(\s*['"]?([^'")]+)""")
# Namespace names are identifiers, never fetched.
XML_NAMESPACES = ("http://www.w3.org/",)


class Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.inline: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._in_script = tag in ("script", "style")
        for name, value in attrs:
            if name in ("src", "href", "spec-url", "srcset", "action", "data") and value:
                self.urls.append(value)

    def handle_endtag(self, tag: str) -> None:
        self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script:
            self.inline.append(data)


def external(url: str) -> bool:
    if url.startswith(("data:", "#")) or url.startswith(XML_NAMESPACES):
        return False
    absolute = urlsplit(urljoin(BASE + "/", url))
    return url.startswith("//") or (absolute.scheme in ("http", "https") and absolute.netloc != "testserver")


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_docs_pages_load_nothing_from_another_host(world: World, page: str) -> None:
    r = world.client.get(page)
    assert r.status_code == 200 and "text/html" in r.headers["content-type"]
    parser = Links()
    parser.feed(r.text)
    in_text = [u for chunk in parser.inline for u in URL_IN_TEXT.findall(chunk)]
    offending = [u for u in parser.urls + in_text if external(u)]
    assert not offending, f"{page} loads from another host: {offending}"
    assets = [u for u in parser.urls if not u.endswith("openapi.json")]
    assert any(u.endswith(".js") for u in assets), parser.urls
    for url in assets:
        asset = world.client.get(urljoin(BASE + page, url))
        assert asset.status_code == 200 and asset.content, url
        if url.endswith(".css"):
            refs = [u for u in CSS_URL.findall(asset.text) if external(u)]
            assert not refs, f"{url} loads from another host: {refs}"
    assert world.client.get(urljoin(BASE + page, "/openapi.json")).status_code == 200


def test_swagger_ui_asks_no_online_validator(world: World) -> None:
    assert '"validatorUrl": null' in world.client.get("/docs").text
