"""The dashboard page and its session login, at the HTTP level."""

from __future__ import annotations

from html.parser import HTMLParser
from http.cookies import SimpleCookie
from importlib.resources import files

import httpx
import pytest

from services.core.auth import Role
from services.embedded import Embedded
from tests.fixtures.app import TEST_BRANDS, Keys

SESSION = "sentimon_session"
STATIC = files("services.api") / "static"
HOSTILE_NAME = "<img src=x onerror=alert(1)>"


class Elements(HTMLParser):
    """Every element of a page with its attributes, and the page's text."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.elements: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)

    def by_id(self, ident: str) -> dict[str, str | None]:
        return next(attrs for _, attrs in self.elements if attrs.get("id") == ident)

    def tags(self, tag: str) -> list[dict[str, str | None]]:
        return [attrs for t, attrs in self.elements if t == tag]


async def log_in(client: httpx.AsyncClient, key: str) -> httpx.Response:
    return await client.post("/login", json={"key": key})


def session_cookie(response: httpx.Response) -> SimpleCookie:
    cookie = SimpleCookie()
    for header in response.headers.get_list("set-cookie"):
        cookie.load(header)
    return cookie


async def test_without_a_session_the_page_redirects_to_login(client: httpx.AsyncClient) -> None:
    r = await client.get("/")
    assert (r.status_code, r.headers["location"]) == (303, "/login")
    client.cookies.set(SESSION, "made-up")
    r = await client.get("/")
    assert (r.status_code, r.headers["location"]) == (303, "/login")


async def test_a_bad_key_is_refused_with_the_reason(client: httpx.AsyncClient) -> None:
    r = await log_in(client, "smk_00000000_not-a-real-key")
    assert r.status_code == 401
    assert r.json()["detail"] == "key: unknown or revoked API key"
    assert r.json()["errors"] == [{"field": "key", "message": "unknown or revoked API key"}]
    assert "set-cookie" not in r.headers
    assert (await log_in(client, "")).status_code == 422
    # Where the login page shows that reason: an alert that login.js fills with text.
    page = Elements((await client.get("/login")).text)
    assert page.by_id("login-error")["role"] == "alert"
    assert "error.textContent" in (STATIC / "login.js").read_text()


async def test_login_sets_an_httponly_strict_session_cookie(
    client: httpx.AsyncClient, keys: Keys
) -> None:
    r = await log_in(client, keys.viewer)
    assert r.status_code == 204, r.text
    morsel = session_cookie(r)[SESSION]
    assert morsel["httponly"] is True
    assert morsel["samesite"].lower() == "strict"
    assert morsel["path"] == "/"
    assert int(morsel["max-age"]) == 12 * 3600
    assert morsel.value and keys.viewer not in r.headers["set-cookie"]
    assert (await client.get("/")).status_code == 200


async def test_the_key_is_never_taken_from_a_url(client: httpx.AsyncClient, keys: Keys) -> None:
    # A key in a query string opens no session anywhere: links must carry it in the
    # fragment, which browsers never send.
    for r in (
        await client.get(f"/login?key={keys.viewer}"),
        await client.get(f"/?key={keys.viewer}"),
        await client.post(f"/login?key={keys.viewer}"),
    ):
        assert r.status_code in (200, 303, 422), r.text
        assert "set-cookie" not in r.headers
    assert (await client.get("/")).status_code == 303
    login_js = (STATIC / "login.js").read_text()
    assert "location.hash" in login_js and "location.search" not in login_js
    # Without JavaScript the form posts the key in the body; it never GETs it into a URL.
    form = Elements((await client.get("/login")).text).by_id("login-form")
    assert (form["method"], form["action"]) == ("post", "/login")


async def test_logout_ends_the_session_on_the_server(client: httpx.AsyncClient, keys: Keys) -> None:
    token = session_cookie(await log_in(client, keys.viewer))[SESSION].value
    assert (await client.get("/")).status_code == 200
    r = await client.post("/logout")
    assert r.status_code == 204
    assert session_cookie(r)[SESSION]["max-age"] == "0"
    # The old token is dead, not just dropped by this browser.
    client.cookies.set(SESSION, token)
    r = await client.get("/")
    assert (r.status_code, r.headers["location"]) == (303, "/login")
    r = await client.get("/api/v1/brands")
    assert r.status_code == 401


async def test_a_viewer_sees_the_dashboard(client: httpx.AsyncClient, keys: Keys) -> None:
    await log_in(client, keys.viewer)
    r = await client.get("/")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    page = Elements(r.text)
    options = [o["value"] for o in page.tags("option")]
    assert {name for name, _, _ in TEST_BRANDS} <= set(options)
    assert "test viewer" in page.text and "viewer" in page.text
    assert "hidden" in page.by_id("empty") and "hidden" not in page.by_id("content")
    assert page.by_id("dashboard")["data-refresh-seconds"] == "15"
    for ident in (
        "range-24h",
        "range-7d",
        "range-30d",
        "sov-chart",
        "net-chart",
        "totals",
        "mentions",
        "filter-brand",
        "filter-label",
        "logout",
        "error",
    ):
        page.by_id(ident)
    # Offline: every script and stylesheet is served from here.
    assets = [s["src"] for s in page.tags("script")] + [
        link["href"] for link in page.tags("link") if link.get("rel") == "stylesheet"
    ]
    assert assets == ["/static/dashboard.js", "/static/theme.css", "/static/style.css"]
    for asset in assets:
        assert asset is not None and (await client.get(asset)).status_code == 200
    csp = next(m for m in page.tags("meta") if m.get("http-equiv") == "Content-Security-Policy")
    assert "script-src 'self'" in (csp["content"] or "")


@pytest.mark.parametrize("role", ["admin", "analyst", "viewer"])
async def test_every_reading_role_sees_the_dashboard(
    client: httpx.AsyncClient, keys: Keys, role: str
) -> None:
    await log_in(client, getattr(keys, role))
    assert (await client.get("/")).status_code == 200


async def test_an_ingest_only_key_gets_403(client: httpx.AsyncClient, keys: Keys) -> None:
    assert (await log_in(client, keys.ingest)).status_code == 204
    r = await client.get("/")
    assert r.status_code == 403
    assert r.headers["content-type"].startswith("text/html")
    assert "This key cannot open the dashboard" in r.text
    assert 'href="/login"' in r.text


async def test_with_no_brands_the_page_says_how_to_add_one(
    client: httpx.AsyncClient, keys: Keys, embedded: Embedded
) -> None:
    for brand in embedded.brands.list():
        embedded.brands.delete(brand.name)
    await log_in(client, keys.viewer)
    page = Elements((await client.get("/")).text)
    assert "hidden" not in page.by_id("empty") and "hidden" in page.by_id("content")
    assert "sentimon brands add" in "".join(page.text)


async def test_names_are_escaped_in_the_page(client: httpx.AsyncClient, embedded: Embedded) -> None:
    embedded.brands.create(HOSTILE_NAME, '"hostile"')
    key, _ = embedded.keys.create(Role.VIEWER, HOSTILE_NAME)
    await log_in(client, key)
    html = (await client.get("/")).text
    assert HOSTILE_NAME not in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
    assert not Elements(html).tags("img")


@pytest.mark.parametrize("script", ["dashboard.js", "login.js"])
def test_scripts_never_turn_data_into_markup(script: str) -> None:
    source = (STATIC / script).read_text()
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
        assert sink not in source, f"{script} uses {sink}"


async def test_pages_cannot_be_framed_and_load_only_their_own_code(
    client: httpx.AsyncClient,
) -> None:
    r = await client.get("/login")
    assert r.headers["x-frame-options"] == "DENY"
    csp = r.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in csp
    assert "script-src 'self'" in csp


async def test_api_docs_work_offline(client: httpx.AsyncClient) -> None:
    page = (await client.get("/docs")).text
    assert "cdn" not in page.lower()
    for asset in ("/docs-assets/swagger-ui-bundle.js", "/docs-assets/swagger-ui.css"):
        assert asset in page
        assert (await client.get(asset)).status_code == 200
