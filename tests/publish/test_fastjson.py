"""pygeoapi's JSON answers through orjson: the same values as pygeoapi's own to_json, and installed everywhere."""
import json
import sys
from datetime import date, datetime, timezone
from decimal import Decimal

import numpy as np
import pygeoapi.util as util
import pytest

from gisplatform.publish import fastjson

ORIGINAL = getattr(util.to_json, "__wrapped__", util.to_json)
TO_JSON = fastjson.make_to_json(ORIGINAL, util.json_serial)

CASES = [
    {"type": "FeatureCollection", "features": [{"id": 1, "properties": {"dia_chi": "Xã Hữu Lũng, Lạng Sơn",
                                                                         "area": 1018.6, "n": None, "ok": True}}]},
    {"when": datetime(2026, 12, 3, 7, 5, 1, 123456, tzinfo=timezone.utc), "day": date(2025, 7, 1),
     "naive": datetime(2026, 1, 2, 3, 4, 5)},
    {"decimal": Decimal("12.5"), "np_int": np.int64(7), "np_float": np.float64(0.1), 3: "int key"},
    {"html": "<script>alert(1)</script>", "nested": [[106.5, 21.8], [1e-7, 123456789.123]]},
]


@pytest.mark.parametrize("value", CASES)
def test_same_values_as_pygeoapi(value):
    fast, slow = TO_JSON(value), ORIGINAL(value)
    assert json.loads(fast.replace("&lt;", "<").replace("&gt;", ">")) == \
        json.loads(slow.replace("&lt;", "<").replace("&gt;", ">"))
    assert "<" not in fast and ">" not in fast  # pygeoapi escapes these; so do we


def test_text_is_utf8_not_escaped_and_compact():
    text = TO_JSON({"ten": "Lạng Sơn", "a": [1, 2]})
    assert text == '{"ten":"Lạng Sơn","a":[1,2]}'


def test_what_orjson_refuses_and_pretty_printing_go_to_pygeoapi():
    huge = {"n": 2**70}
    assert TO_JSON(huge) == ORIGINAL(huge)
    assert TO_JSON({"a": 1}, pretty=True) == ORIGINAL({"a": 1}, pretty=True)


def test_not_a_number_becomes_null():
    assert json.loads(TO_JSON({"x": float("nan")})) == {"x": None}


def test_install_reaches_every_pygeoapi_module_and_is_idempotent():
    import pygeoapi.api.itemtypes  # noqa: F401 - API modules bind to_json by name at import

    fastjson.install()
    assert fastjson.install() == 0  # nothing left to replace
    users = [m for n, m in sys.modules.items() if n.startswith("pygeoapi") and hasattr(m, "to_json")]
    assert "pygeoapi.api.itemtypes" in {m.__name__ for m in users}
    assert all(getattr(m.to_json, "__wrapped__", None) is ORIGINAL for m in users)
    assert fastjson.loads('{"a": [1, 2.5, "ư"]}') == json.loads('{"a": [1, 2.5, "ư"]}')
