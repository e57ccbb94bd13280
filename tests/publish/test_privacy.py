"""Nobody outside can read personal data: every public response is scanned for the sample's personal values.

The values come from the database itself (every individual land user's name, ID number, birth date, address and
certificate serial; individual licence holders' names), not from a hand-picked list. Organisations' names are
public by design and are not in the list. A value that happens to occur inside some public text (a person
named like a commune) is left out of the scan, since finding it would prove nothing.
"""
from __future__ import annotations

import functools
import math
import re

import pytest
import sqlalchemy as sa

LAYERS = ("cadastral_parcels", "mining_licences", "water_licences", "water_sources", "water_protection_corridors",
          "admin_units")


@pytest.fixture(scope="module")
def personal_values(published_engine) -> list[str]:
    with published_engine.connect() as connection:
        rows = connection.execute(sa.text("""
            SELECT unnest(ARRAY[user_name, user_id_number, user_address, certificate_serial,
                                user_birth_date::text, to_char(user_birth_date, 'DD/MM/YYYY')])
            FROM data.cadastral_parcels WHERE user_type IN ('CNV', 'GDC') OR user_type IS NULL
            UNION SELECT holder_name FROM data.mining_licences WHERE holder_type <> 'to_chuc'
            UNION SELECT holder_name FROM data.water_licences WHERE holder_type <> 'to_chuc'""")).scalars().all()
        public = "\n".join(connection.execute(sa.text(
            "SELECT string_agg(t::text, '\n') FROM (" + " UNION ALL ".join(
                f"SELECT to_jsonb(v) - 'geom' - 'geom_wgs84' AS t FROM api.{layer} v" for layer in LAYERS)
            + ") x")).scalar() or "")
    values = {v for v in rows if v and len(v) >= 6}
    scanned = sorted(v for v in values if v not in public)
    assert len(scanned) > 1000, "the sample should hold thousands of personal values"
    return scanned


@functools.cache
def _pattern(values: tuple[str, ...]) -> re.Pattern:
    return re.compile("|".join(re.escape(v) for v in sorted(values, key=len, reverse=True)))


def leaks(body: bytes | str, values: list[str]) -> list[str]:
    """The personal values found in a response (one regular-expression pass over the body)."""
    text = body.decode("utf-8", errors="replace") if isinstance(body, bytes) else body
    return sorted(set(_pattern(tuple(values)).findall(text)))


def public_pages(http, api) -> list[tuple[str, dict]]:
    """(path, params) of the public responses to scan (besides the paged items, done separately)."""
    pages = [("/", {}), ("/collections", {}), ("/collections", {"f": "html"}), ("/openapi", {"f": "json"}),
             ("/collections/catalogue/items", {"limit": 100}), ("/collections/catalogue/items", {"f": "html"})]
    for layer in LAYERS:
        base = f"/collections/{layer}"
        pages += [(base, {}), (base, {"f": "html"}), (f"{base}/queryables", {}), (f"{base}/schema", {}),
                  (f"{base}/items", {"f": "html", "limit": 50}), (f"{base}/items", {"f": "jsonld", "limit": 50}),
                  (f"{base}/items", {"f": "csv", "limit": 1000}),
                  (f"{base}/items", {"limit": 50, "datetime": "2000-01-01T00:00:00Z/.."}),
                  (f"{base}/tiles", {}), (f"{base}/tiles/WebMercatorQuad", {"f": "tilejson"}),
                  (f"/collections/catalogue/items/{layer}", {})]
    return pages


def test_no_public_page_holds_personal_data(http, api, personal_values):
    for path, params in public_pages(http, api):
        response = http.get(f"{api}{path}", params=params, timeout=60)
        assert response.status_code < 500, (path, params)
        assert leaks(response.content, personal_values) == [], (path, params)


@pytest.mark.parametrize("layer", LAYERS)
def test_no_feature_of_any_layer_holds_personal_data(http, api, personal_values, layer):
    url, params, seen = f"{api}/collections/{layer}/items", {"limit": 2000}, 0
    while url:
        response = http.get(url, params=params, timeout=120)
        assert response.status_code == 200
        assert leaks(response.content, personal_values) == []
        page = response.json()
        seen += len(page["features"])
        if page["features"]:  # one feature on its own page too (HTML and JSON)
            fid = page["features"][0]["id"]
            for f in ("json", "html"):
                one = http.get(f"{api}/collections/{layer}/items/{fid}", params={"f": f}, timeout=60)
                assert leaks(one.content, personal_values) == []
        url = next((link["href"] for link in page["links"] if link["rel"] == "next"), None)
        params = None
    assert seen > 0


def _tile(lon: float, lat: float, zoom: int) -> tuple[int, int]:
    n = 2 ** zoom
    return int((lon + 180) / 360 * n), int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)


@pytest.mark.parametrize("layer", ["cadastral_parcels", "mining_licences", "water_licences"])
def test_no_vector_tile_holds_personal_data(http, api, published_engine, personal_values, layer):
    with published_engine.connect() as connection:  # tiles that hold features: around a sample of them
        points = connection.execute(sa.text(
            f"SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(geom_wgs84) p FROM api.{layer} "
            f"ORDER BY id LIMIT 10) x")).all()
    fetched = 0
    for zoom in (14, 15, 16):
        for x, y in {_tile(lon, lat, zoom) for lon, lat in points}:
            response = http.get(f"{api}/collections/{layer}/tiles/WebMercatorQuad/{zoom}/{y}/{x}",
                                params={"f": "mvt"}, timeout=60)
            assert response.status_code in (200, 204)
            fetched += response.status_code == 200
            # MVT keeps strings as UTF-8 bytes: a substring search over the tile finds any leaked value
            assert leaks(response.content, personal_values) == []
    assert fetched > 0


def _answer(http, api, params) -> tuple[int, str]:
    response = http.get(f"{api}/collections/cadastral_parcels/items", params=params, timeout=60)
    return response.status_code, response.text


def test_hidden_fields_cannot_be_filtered_sorted_or_selected(http, api, personal_values, published_engine):
    with published_engine.connect() as connection:
        real = connection.execute(sa.text(
            "SELECT user_name FROM data.cadastral_parcels WHERE user_type = 'CNV' LIMIT 1")).scalar()
    fake = "Không Có Người Này"
    for field in ("user_name", "user_id_number", "user_birth_date", "user_address", "certificate_serial"):
        # a CQL2 filter on a hidden field is refused the same way whether or not the value exists,
        # and the same way as a field that does not exist at all: nothing to learn from counts or messages
        status_real, body_real = _answer(http, api, {"filter": f"{field}='{real}'"})
        status_fake, body_fake = _answer(http, api, {"filter": f"{field}='{fake}'"})
        status_none, body_none = _answer(http, api, {"filter": f"no_such_field='{fake}'"})
        assert status_real == status_fake == status_none == 400
        assert body_real.replace(real, "?") == body_fake.replace(fake, "?")
        assert body_none.replace("no_such_field", field) == body_fake
        assert leaks(body_real.replace(real, ""), personal_values) == []
        for params in ({"sortby": field}, {"properties": field}):
            assert _answer(http, api, params)[0] == 400
    # an equality parameter on a hidden field is ignored like any unknown parameter: same answer as without
    everything = http.get(f"{api}/collections/cadastral_parcels/items", params={"resulttype": "hits"}).json()
    filtered = http.get(f"{api}/collections/cadastral_parcels/items",
                        params={"resulttype": "hits", "user_name": real}).json()
    assert filtered["numberMatched"] == everything["numberMatched"]


def test_queryables_list_only_public_fields(http, api):
    from gisplatform.layers import get_layer

    for layer in LAYERS:
        definition = get_layer(layer)
        queryables = http.get(f"{api}/collections/{layer}/queryables", timeout=30).json()["properties"]
        assert not {f.name for f in definition.personal_fields} & set(queryables)
        assert {f.name for f in definition.public_fields} <= set(queryables) | {"geometry"}


def test_the_etl_status_page_holds_no_personal_data(http, api_server, published_engine, personal_values):
    """/status (issue 5): every run page, every rejects CSV, the JSON summary; the sample's rejects included."""
    with published_engine.connect() as connection:
        run_ids = connection.execute(sa.text("SELECT run_id FROM etl.runs ORDER BY run_id")).scalars().all()
        assert connection.execute(sa.text("SELECT count(*) FROM etl.rejects")).scalar() > 0
    paths = ["/status/", "/status/runs.json"] + [p for r in run_ids for p in (f"/status/runs/{r}",
                                                                             f"/status/runs/{r}/rejects.csv")]
    for path in paths:
        response = http.get(f"{api_server}{path}", timeout=60)
        assert response.status_code == 200, path
        assert leaks(response.content, personal_values) == [], path


def test_analysis_outputs_hold_no_personal_data(http, api, published_engine, personal_values):
    """The conflicts collection and every process output (JSON and XLSX) and error, on individuals' parcels."""
    import io
    import zipfile

    for params in ({"limit": 10000}, {"f": "html"}, {"f": "csv", "limit": 10000},
                   {"datetime": "2000-01-01T00:00:00Z/..", "limit": 10000}):
        page = http.get(f"{api}/collections/conflicts/items", params=params, timeout=120)
        assert page.status_code == 200 and leaks(page.content, personal_values) == []
    with published_engine.connect() as connection:
        parcels = connection.execute(sa.text(
            "SELECT parcel_id, ST_AsGeoJSON(ST_Buffer(geom_wgs84, 0.002), 7)::json FROM data.cadastral_parcels "
            "WHERE user_type = 'CNV' AND parcel_id IS NOT NULL ORDER BY fid LIMIT 5")).all()
        real = connection.execute(sa.text(
            "SELECT user_name FROM data.cadastral_parcels WHERE user_type = 'CNV' LIMIT 1")).scalar()
    calls = [("land-statistics", {}), ("licence-precheck", {"geometry": parcels[0][1], "licence_no": real}),
             ("parcel-report", {"parcel_id": real}), ("parcel-report", {"commune_code": real, "map_sheet_no": "1",
                                                                        "parcel_no": "1"})]
    calls += [("parcel-report", {"parcel_id": pid}) for pid, _ in parcels]
    calls += [("parcel-report", {"polygon": area}) for _, area in parcels[:2]]
    for process, inputs in calls:
        answer = http.post(f"{api}/processes/{process}/execution", json={"inputs": inputs}, timeout=300)
        assert answer.status_code in (200, 400), (process, answer.text[:500])
        # a name the caller sent may come back (the echo of the query), nothing else personal
        body = answer.content.decode("utf-8").replace(real, "")
        assert leaks(body, personal_values) == [], process
    xlsx = http.post(f"{api}/processes/land-statistics/execution", json={"inputs": {"format": "xlsx"}}, timeout=300)
    with zipfile.ZipFile(io.BytesIO(xlsx.content)) as archive:
        text = "".join(archive.read(name).decode("utf-8", "replace") for name in archive.namelist())
    assert leaks(text, personal_values) == []
