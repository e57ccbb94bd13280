"""pygeoapi's HTML pages without the internet: its templates with local copies of the libraries they load.

pygeoapi 0.24's Jinja templates load Bootstrap, Leaflet (and its plugins) and Swagger UI from unpkg.com,
cdn.jsdelivr.net and cdnjs. In an office network without internet, or when those sites are slow, the collection
and item pages come out unstyled and without their map, and the OpenAPI page stays blank. Those libraries are
installed from npm next to the portal's MapLibre (``gisplatform/portal/package.json``, same versions as the
templates ask for), and :func:`write_html_assets` writes, next to the generated configuration:

* ``templates/``: pygeoapi's templates with every CDN address whose file is installed replaced by the same file
  under ``{server url}/static/vendor/<package>/<path>``; an address whose file is not installed stays as it
  was (the page then behaves exactly as stock pygeoapi);
* ``static/``: pygeoapi's own static files, plus ``vendor/<package>`` links into ``node_modules``.

* ``locale/``: the Vietnamese labels of those pages (``ogc_config/locale/<lang>/LC_MESSAGES/messages.po``,
  compiled with Babel); pygeoapi's wheel ships no translations, so without them every label is English.

The configuration's ``server.templates`` points pygeoapi at both (``path`` and ``static``) and
``server.locale_dir`` at the compiled labels, which is pygeoapi's documented way of customising its pages;
nothing in pygeoapi is changed.
"""
from __future__ import annotations

import logging
import re
import shutil
from pathlib import Path

LOGGER = logging.getLogger(__name__)

NODE_MODULES = Path(__file__).resolve().parents[1] / "portal" / "node_modules"
CATALOGUES = Path(__file__).resolve().parents[2] / "ogc_config" / "locale"
VENDOR = "vendor"

# unpkg.com/<package>[@version]/<path>, cdn.jsdelivr.net/npm/<package>@<version>/<path> (package may be @scoped)
_NPM_CDN = re.compile(r"https://(?:unpkg\.com|cdn\.jsdelivr\.net/npm)/"
                      r"(?P<package>(?:@[\w.-]+/)?[\w.-]+?)(?:@[\w.^~-]+)?/(?P<path>[^\"'\s)]+)")
# cdnjs.cloudflare.com/ajax/libs/leaflet/<version>/<file>: the same files as leaflet's dist/
_CDNJS_LEAFLET = re.compile(r"https://cdnjs\.cloudflare\.com/ajax/libs/leaflet/[\w.]+/(?P<path>[\w.-]+)")


def _pygeoapi_dir() -> Path:
    import pygeoapi

    return Path(pygeoapi.__file__).resolve().parent


def local_url(package: str, path: str, node_modules: Path = NODE_MODULES) -> str | None:
    """The templated local address of a CDN file, or None when the file is not installed."""
    if not (node_modules / package / path).is_file():
        return None
    return "{{ config['server']['url'] }}/static/" + f"{VENDOR}/{package}/{path}"


def localise(text: str, node_modules: Path = NODE_MODULES) -> tuple[str, set[str]]:
    """A template's text with installed CDN files made local; also the addresses left pointing outside."""
    outside: set[str] = set()

    def npm(match: re.Match) -> str:
        url = local_url(match["package"], match["path"], node_modules)
        if url is None:
            outside.add(match[0])
        return url or match[0]

    def cdnjs(match: re.Match) -> str:
        url = local_url("leaflet", f"dist/{match['path']}", node_modules)
        if url is None:
            outside.add(match[0])
        return url or match[0]

    text = _NPM_CDN.sub(npm, text)
    text = _CDNJS_LEAFLET.sub(cdnjs, text)
    return text, outside


def compile_labels(out_dir: Path, catalogues: Path = CATALOGUES) -> Path:
    """``<out_dir>/locale/<lang>/LC_MESSAGES/messages.mo`` from each ``messages.po``; returns the locale folder."""
    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po

    locale_dir = Path(out_dir) / "locale"
    for po in sorted(catalogues.glob("*/LC_MESSAGES/messages.po")):
        target = locale_dir / po.relative_to(catalogues).with_suffix(".mo")
        target.parent.mkdir(parents=True, exist_ok=True)
        with po.open("rb") as fh:
            catalog = read_po(fh)
        with target.open("wb") as fh:
            write_mo(fh, catalog)
    return locale_dir


def write_html_assets(out_dir: Path, node_modules: Path = NODE_MODULES) -> dict[str, str]:
    """Write ``templates/`` and ``static/`` under ``out_dir``; returns pygeoapi's ``server.templates`` entry."""
    source = _pygeoapi_dir()
    templates, static = Path(out_dir) / "templates", Path(out_dir) / "static"
    shutil.rmtree(templates, ignore_errors=True)
    outside: set[str] = set()
    for path in sorted((source / "templates").rglob("*")):
        target = templates / path.relative_to(source / "templates")
        if path.is_dir():
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        if path.suffix in (".html", ".j2", ".jinja2"):
            text, missed = localise(path.read_text(encoding="utf-8"), node_modules)
            target.write_text(text, encoding="utf-8")
            outside |= missed
        else:
            shutil.copy2(path, target)
    shutil.rmtree(static, ignore_errors=True)
    shutil.copytree(source / "static", static)
    vendor = static / VENDOR
    vendor.mkdir()
    if node_modules.is_dir():
        for package in _packages(node_modules):
            link = vendor / package
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to(node_modules / package, target_is_directory=True)
    else:
        LOGGER.warning("%s is missing (run scripts/setup.sh): the API's HTML pages load their libraries from "
                       "the internet", node_modules)
    if outside:
        LOGGER.info("HTML pages still load from the internet (no local copy installed): %s",
                    ", ".join(sorted(outside)))
    return {"path": str(templates), "static": str(static)}


def _packages(node_modules: Path) -> list[str]:
    """Installed package names (``name`` or ``@scope/name``)."""
    names = []
    for entry in sorted(node_modules.iterdir()):
        if entry.name.startswith("."):
            continue
        if entry.name.startswith("@"):
            names += [f"{entry.name}/{sub.name}" for sub in sorted(entry.iterdir()) if sub.is_dir()]
        elif entry.is_dir():
            names.append(entry.name)
    return names
