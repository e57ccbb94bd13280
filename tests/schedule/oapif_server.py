"""A minimal OGC API - Features server over a GeoJSON file, run as its own process by the tests.

Its own process because GDAL's OAPIF driver, called from pyogrio, holds the GIL while it fetches: a server
thread in the test process could not answer. Usage: python oapif_server.py FEATURES.geojson COLLECTION
(prints the port, then serves until killed).
"""
from __future__ import annotations

import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

CONFORMANCE = ["http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
               "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson"]


def main() -> None:
    features = json.loads(Path(sys.argv[1]).read_text(encoding="utf-8"))
    name = sys.argv[2]

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - http.server's naming
            base = f"http://127.0.0.1:{self.server.server_address[1]}"
            items = {"rel": "items", "type": "application/geo+json", "href": f"{base}/collections/{name}/items"}
            collection = {"id": name, "title": name, "links": [items]}
            documents = {
                "/": {"links": [{"rel": "conformance", "href": f"{base}/conformance"},
                                {"rel": "data", "href": f"{base}/collections"}]},
                "/conformance": {"conformsTo": CONFORMANCE},
                "/collections": {"collections": [collection], "links": []},
                f"/collections/{name}": collection,
                # one page: every feature, no next link
                f"/collections/{name}/items": {**features, "numberMatched": len(features["features"]),
                                               "numberReturned": len(features["features"]), "links": []},
            }
            path = self.path.split("?")[0].rstrip("/") or "/"
            if path not in documents:
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            body = json.dumps(documents[path], ensure_ascii=False).encode("utf-8")
            self.send_response(200)
            self.send_header("Content-Type", "application/geo+json" if path.endswith("/items") else "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    print(server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
