"""ConfigPages (gisplatform.publish.server): pygeoapi's fixed pages kept per request variant, nothing else kept."""
from __future__ import annotations

from werkzeug.test import Client

from gisplatform.publish.server import CONFIG_PAGES, ConfigPages


class Echo:
    """A WSGI app whose answer shows every input that may matter, and counts its calls."""

    def __init__(self, status: str = "200 OK"):
        self.calls = 0
        self.status = status

    def __call__(self, environ, start_response):
        self.calls += 1
        body = "|".join(str(environ.get(name)) for name in ConfigPages.KEY_ENVIRON + ("REQUEST_METHOD",))
        start_response(self.status, [("Content-Type", "text/plain"), ("X-Call", str(self.calls))])
        return [body.encode()]


def _client(app) -> Client:
    return Client(ConfigPages(app, CONFIG_PAGES))


def test_a_repeated_request_is_answered_from_memory_byte_for_byte():
    app = Echo()
    client = _client(app)
    first = client.get("/", query_string={"f": "json", "lang": "en"})
    again = client.get("/", query_string={"f": "json", "lang": "en"})
    assert app.calls == 1 and again.data == first.data and again.headers == first.headers
    again.headers["X-Call"] = "changed"  # what a caller does to its headers stays with it
    assert client.get("/", query_string={"f": "json", "lang": "en"}).headers["X-Call"] == "1"


def test_every_input_that_may_change_the_page_is_part_of_the_key():
    app = Echo()
    client = _client(app)
    variants = [
        dict(), dict(query_string="f=html"), dict(query_string="lang=en"), dict(query_string="f=html&lang=en"),
        dict(headers={"Accept": "text/html"}), dict(headers={"Accept-Language": "en"}),
        dict(headers={"Accept-Encoding": "gzip"}), dict(headers={"Host": "gis.example.vn"}),
        dict(headers={"X-Forwarded-Host": "gis.example.vn"}), dict(headers={"X-Forwarded-Proto": "https"}),
        dict(headers={"X-Forwarded-Prefix": "/api"}), dict(base_url="https://localhost/"),
    ]
    bodies = {client.get("/", **variant).data for variant in variants}
    assert len(bodies) == len(variants) == app.calls
    for variant in variants:  # each variant has its own answer, not the last one kept
        assert client.get("/", **variant).data in bodies
    assert app.calls == len(variants)


def test_only_the_fixed_pages_and_only_complete_gets_are_kept():
    app = Echo()
    client = _client(app)
    for _ in range(2):
        client.get("/collections")
        client.get("/collections/cadastral_parcels/items/1")
        client.post("/")
        client.head("/")
    assert app.calls == 8
    client.get("/conformance"), client.get("/conformance"), client.get(""), client.get("")
    assert app.calls == 10
    failing = Echo("500 Internal Server Error")
    client = _client(failing)
    client.get("/"), client.get("/")
    assert failing.calls == 2


def test_the_memory_is_bounded():
    app = Echo()
    pages = ConfigPages(app, CONFIG_PAGES, size=4)
    client = Client(pages)
    for i in range(10):
        client.get("/", query_string={"junk": i})
    assert len(pages.answers) == 4
    client.get("/", query_string={"junk": 9})
    client.get("/", query_string={"junk": 0})
    assert app.calls == 11  # the newest kept, the oldest gone
