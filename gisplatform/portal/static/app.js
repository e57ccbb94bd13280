/* Land-data portal: MapLibre over our OGC API (tiles, items + CQL2), vanilla JS, Vietnamese / English.
 * Everything it shows comes from the public API under ogc/ and from style.json (the map style and the labels
 * of layers, fields and codes, built by the server from layers/*.yml). window.portal is for tests and curious users. */
(function () {
  "use strict";
  var T0 = performance.now();
  var ROOT = new URL(".", document.baseURI).href;           // the portal's root, ends with "/"
  var API = ROOT + "ogc";
  var $ = function (id) { return document.getElementById(id); };
  var portal = window.portal = { timings: { script: Math.round(T0) }, errors: [], ready: false };  // ms since navigation start

  /* ---------------------------------------------------------------------------------------------- language */
  var EN = {
    org: "Lạng Sơn Department of Agriculture and Environment", title: "Land Data Portal",
    mapLabel: "Map", panelLabel: "Search panel", tabSearch: "Search", tabInfo: "Details", tabLayers: "Layers",
    tabLegend: "Legend", tabDownload: "Download", tabAbout: "Open data", collapse: "Collapse panel",
    parcelTitle: "Find a parcel", commune: "Commune or ward", communeHint: "Type a name, accents optional: Dong Kinh",
    sheet: "Map sheet no.", parcelNo: "Parcel no.", orParcelId: "or parcel ID", find: "Search",
    licenceTitle: "Find a licence", licenceNo: "Mining or water licence number",
    infoEmpty: "Pick a feature on the map or search for a parcel to see its details.",
    downloadTitle: "Download data", dlLayer: "Layer", dlScope: "Extent", dlView: "What the map shows now",
    dlSelection: "The selected feature", dlFormat: "Format",
    dlNote: "Straight from the OGC API; no personal data.", zoomHint: "Zoom in to see parcels", zoomIn: "Zoom in"
  };
  var VI = {};
  var MSG = {  // [Vietnamese, English] of the texts written by this script
    loading: ["Đang tải…", "Loading…"], noMapLib: ["Không tải được thư viện bản đồ MapLibre (chạy scripts/setup.sh trên máy chủ).",
      "The map library MapLibre could not be loaded (run scripts/setup.sh on the server)."],
    styleFail: ["Không tải được kiểu bản đồ.", "The map style could not be loaded."],
    apiFail: ["Máy chủ dữ liệu không trả lời", "The data server did not answer"],
    needCommune: ["Chọn xã, phường trong danh sách gợi ý.", "Pick the commune or ward from the suggestions."],
    needSheet: ["Nhập số tờ bản đồ (số nguyên) và số thửa.", "Enter the map sheet number (a whole number) and the parcel number."],
    needQuery: ["Nhập xã, tờ bản đồ và số thửa, hoặc mã thửa đất.", "Enter commune, sheet and parcel number, or a parcel ID."],
    needLicence: ["Nhập số giấy phép (hoặc một phần).", "Enter a licence number (or part of it)."],
    noParcel: ["Không tìm thấy thửa đất nào.", "No parcel found."], noLicence: ["Không tìm thấy giấy phép nào.", "No licence found."],
    several: ["Có {n} kết quả, chọn một:", "{n} results, pick one:"], more: ["(còn nữa, hãy tìm cụ thể hơn)", "(more: narrow the search)"],
    sheetOf: ["Tờ {s}", "Sheet {s}"], parcelHead: ["Thửa đất số {p}, tờ bản đồ số {s}", "Parcel {p}, map sheet {s}"],
    landUse: ["Mục đích sử dụng đất", "Land use"], overlaps: ["Chồng lấn với", "Overlaps"], none: ["Không có", "None"],
    checking: ["Đang kiểm tra…", "Checking…"], zoomTo: ["Thu phóng tới", "Zoom to"], clear: ["Bỏ chọn", "Clear"],
    download: ["Tải", "Download"], yes: ["Có", "Yes"], no: ["Không", "No"], former: ["trước 01/7/2025", "before 1 Jul 2025"],
    xa: ["xã", "commune"], phuong: ["phường", "ward"], thi_tran: ["thị trấn", "township"],
    counting: ["Đang đếm số đối tượng…", "Counting features…"], empty: ["Không có đối tượng nào trong phạm vi này.", "Nothing in this extent."],
    tooMany: ["Phạm vi này có {n} đối tượng, nhiều hơn giới hạn {m} của một lần tải: tệp chỉ gồm {m} đối tượng đầu tiên. Hãy phóng to để tải đủ.",
      "This extent holds {n} features, more than the {m} one download may hold: the file has the first {m} only. Zoom in to get them all."],
    started: ["Đang tải xuống {n} đối tượng ({f}).", "Downloading {n} features ({f})."],
    noSelection: ["Chưa chọn đối tượng nào.", "Nothing is selected."],
    fromZoom: ["hiện từ mức thu phóng {z}", "shown from zoom {z}"], opacity: ["Độ đậm", "Opacity"],
    legendNote: ["Màu theo quy ước bản đồ hiện trạng sử dụng đất (TT 28/2014); * màu gần đúng. Mờ: không có trong vùng đang xem.",
      "Colours of the land-use status map convention (TT 28/2014); * approximate colour. Faded: not in the current view."],
    otherLayers: ["Các lớp khác", "Other layers"], commune: ["Ranh giới xã, phường", "Commune boundary"],
    cursor: ["Con trỏ", "Cursor"], centre: ["Tâm bản đồ", "Map centre"], selectionOf: ["Đang chọn: {x}", "Selected: {x}"]
  };
  var lang = (new URLSearchParams(location.search).get("lang") || localStorage.getItem("gp-lang") || "vi") === "en" ? "en" : "vi";
  function m(key, vars) {
    var text = MSG[key] ? MSG[key][lang === "en" ? 1 : 0] : key;
    return text.replace(/\{(\w+)\}/g, function (_, k) { return vars && vars[k] != null ? vars[k] : ""; });
  }
  function tr(obj) { return obj ? (obj[lang] || obj.vi || "") : ""; }
  function applyLanguage() {
    document.documentElement.lang = lang;
    document.querySelectorAll("[data-i18n]").forEach(function (node) {
      var key = node.dataset.i18n;
      if (!(key in VI)) { VI[key] = node.textContent; }
      node.textContent = lang === "en" ? (EN[key] || VI[key]) : VI[key];
    });
    [["i18nLabel", "aria-label"], ["i18nPh", "placeholder"]].forEach(function (pair) {
      document.querySelectorAll("[data-" + pair[0].replace(/[A-Z]/g, function (c) { return "-" + c.toLowerCase(); }) + "]").forEach(function (node) {
        var key = node.dataset[pair[0]], store = pair[1] + ":" + key;
        if (!(store in VI)) { VI[store] = node.getAttribute(pair[1]); }
        node.setAttribute(pair[1], lang === "en" ? (EN[key] || VI[store]) : VI[store]);
      });
    });
    var button = $("lang");
    button.textContent = lang === "en" ? "VI" : "EN";
    button.lang = lang === "en" ? "vi" : "en";
    button.setAttribute("aria-label", lang === "en" ? "Tiếng Việt" : "English version");
    document.title = (lang === "en" ? EN.title + " · " + EN.org : VI.title + " · " + VI.org);
    if (meta) { buildLayerList(); buildLegend(); fillDownloadLayers(); redrawInfo(); updateCoords(); updateHint(); }
  }

  /* ---------------------------------------------------------------------------------------------- helpers */
  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      if (k === "text") { node.textContent = attrs[k]; } else if (k === "on") {
        Object.keys(attrs.on).forEach(function (ev) { node.addEventListener(ev, attrs.on[ev]); });
      } else if (attrs[k] != null && attrs[k] !== false) { node.setAttribute(k, attrs[k] === true ? "" : attrs[k]); }
    });
    (children || []).forEach(function (c) { if (c != null) { node.appendChild(typeof c === "string" ? document.createTextNode(c) : c); } });
    return node;
  }
  function fold(text) {  // accent-insensitive comparison key: "Đông Kinh" -> "dong kinh"
    return String(text || "").normalize("NFD").replace(/[\u0300-\u036f]/g, "").replace(/đ/g, "d").replace(/Đ/g, "D")
      .toLowerCase().replace(/\s+/g, " ").trim();
  }
  function q(value) { return "'" + String(value).replace(/'/g, "''") + "'"; }  // a CQL2 string literal
  function likeEscape(value) { return String(value).replace(/[\\%_]/g, "\\$&"); }
  function itemsUrl(layer, params) {
    var search = new URLSearchParams(Object.assign({ f: "json" }, params));
    return API + "/collections/" + encodeURIComponent(layer) + "/items?" + search.toString();
  }
  async function getJson(url, options) {
    var response;
    try {
      response = await fetch(url, Object.assign({ headers: { Accept: "application/geo+json, application/json" } }, options));
    } catch (err) { throw new Error(m("apiFail")); }
    var body = await response.json().catch(function () { return {}; });
    if (!response.ok) { throw new Error(m("apiFail") + " (" + response.status + (body.description ? ": " + body.description : "") + ")"); }
    return body;
  }
  function number(value, digits) {
    return new Intl.NumberFormat(lang === "en" ? "en-GB" : "vi-VN", { maximumFractionDigits: digits == null ? 2 : digits,
      minimumFractionDigits: digits || 0 }).format(value);
  }
  function date(value) {
    var d = new Date(String(value).slice(0, 10) + "T00:00:00Z");
    return isNaN(d) ? String(value) : d.toLocaleDateString(lang === "en" ? "en-GB" : "vi-VN",
      { timeZone: "UTC", day: "2-digit", month: lang === "en" ? "short" : "2-digit", year: "numeric" });
  }
  var toastTimer;
  function toast(text, warn) {
    var box = $("toast");
    box.textContent = text;
    box.className = "toast" + (warn ? " warn" : "");
    box.hidden = !text;
    clearTimeout(toastTimer);
    if (text) { toastTimer = setTimeout(function () { box.hidden = true; }, warn ? 9000 : 4500); }
  }
  function bounds(geometry) {
    var b = [Infinity, Infinity, -Infinity, -Infinity];
    (function walk(c) {
      if (typeof c[0] === "number") {
        b[0] = Math.min(b[0], c[0]); b[1] = Math.min(b[1], c[1]); b[2] = Math.max(b[2], c[0]); b[3] = Math.max(b[3], c[1]);
      } else { c.forEach(walk); }
    })(geometry.coordinates);
    return b;
  }

  /* ---------------------------------------------------------------------------------------------- state */
  var map, meta, layerMeta = {}, communes = [], communeByCode = {}, selected = null, lastInfo = null, pointer = null;
  var CLICK_ORDER = ["water_licences", "cadastral_parcels", "mining_licences", "water_protection_corridors", "water_sources", "admin_units"];

  /* ---------------------------------------------------------------------------------------------- tabs */
  var tabs = Array.prototype.slice.call(document.querySelectorAll("[role=tab]"));
  function showTab(id, focus) {  // a tab of the panel, or "about" (the open-data page, opened from the header)
    tabs.forEach(function (tab) {
      var on = tab.id === id;
      tab.setAttribute("aria-selected", on ? "true" : "false");
      tab.tabIndex = on || (id === "about" && tab === tabs[0]) ? 0 : -1;
      $(tab.getAttribute("aria-controls")).hidden = !on;
      if (on && focus) { tab.focus(); }
    });
    $("p-about").hidden = id !== "about";
    $("panel-body").scrollTop = 0;
    $("about").setAttribute("aria-expanded", id === "about" ? "true" : "false");
    setCollapsed(false);
  }
  $("about").addEventListener("click", function () { showTab($("p-about").hidden ? "about" : "tab-search"); });
  tabs.forEach(function (tab, i) {
    tab.addEventListener("click", function () { showTab(tab.id); });
    tab.addEventListener("keydown", function (e) {
      var step = e.key === "ArrowRight" ? 1 : e.key === "ArrowLeft" ? -1 : 0;
      if (step) { e.preventDefault(); showTab(tabs[(i + step + tabs.length) % tabs.length].id, true); }
    });
  });
  function setCollapsed(collapsed) {
    $("panel").classList.toggle("collapsed", collapsed);
    $("collapse").setAttribute("aria-expanded", collapsed ? "false" : "true");
  }
  $("collapse").addEventListener("click", function () { setCollapsed(!$("panel").classList.contains("collapsed")); });
  $("lang").addEventListener("click", function () {
    lang = lang === "en" ? "vi" : "en";
    localStorage.setItem("gp-lang", lang);
    applyLanguage();
  });

  /* ---------------------------------------------------------------------------------------------- the map */
  async function start() {
    applyLanguage();
    if (window.matchMedia("(max-width: 700px)").matches) { setCollapsed(true); }
    if (!window.maplibregl) { toast(m("noMapLib"), true); return; }
    maplibregl.prewarm();  // start the tile worker while the style arrives
    var style;
    try {
      var response = await (window.portalStyle || fetch(ROOT + "style.json"));  // asked for by index.html
      if (!response.ok) { throw new Error("HTTP " + response.status); }
      style = await response.json();
    } catch (err) { toast(m("styleFail") + " " + err.message, true); return; }
    meta = portal.meta = style.metadata["gisplatform:portal"];
    meta.layers.forEach(function (l) { layerMeta[l.id] = l; });
    Object.keys(style.sources).forEach(function (id) {  // tile URLs in the style are relative to the portal
      var source = style.sources[id];
      if (source.tiles) { source.tiles = source.tiles.map(function (t) { return /^https?:/.test(t) ? t : ROOT + t; }); }
      if (typeof source.data === "string" && !/^https?:/.test(source.data)) { source.data = ROOT + source.data; }
    });
    portal.timings.style = Math.round(performance.now());
    var phone = window.matchMedia("(max-width: 700px)").matches;
    map = portal.map = new maplibregl.Map({
      container: "map", style: style, bounds: meta.bounds, fitBoundsOptions: { padding: phone ? 10 : { left: 380, top: 20, right: 20, bottom: 30 } },
      hash: "map", maxZoom: 20, attributionControl: { compact: true }, dragRotate: false, pitchWithRotate: false,
      touchPitch: false
    });
    portal.timings.mapCreated = Math.round(performance.now());
    map.touchZoomRotate.disableRotation();
    map.addControl(new maplibregl.NavigationControl({ showCompass: false }), "top-right");
    map.addControl(new maplibregl.ScaleControl({ unit: "metric", maxWidth: 120 }), phone ? "top-left" : "bottom-right");
    map.on("error", function (e) {  // a failed tile or source: counted (tests read it) and told, never silent
      var text = (e && e.error && e.error.message) || "map error";
      portal.errors.push(text);
      toast(m("apiFail") + ": " + text, true);
    });
    map.on("dataloading", function (e) {
      if (!portal.timings.firstRequest && e.dataType === "source" && e.tile) { portal.timings.firstRequest = Math.round(performance.now()); }
    });
    map.on("data", function (e) {
      if (e.dataType === "source" && e.tile && !portal.timings["tile:" + e.sourceId]) {  // first tile of each layer
        portal.timings["tile:" + e.sourceId] = Math.round(performance.now());
      }
      if (!portal.timings.firstTile && e.dataType === "source" && e.tile && e.sourceId !== "selection") {
        portal.timings.firstTile = Math.round(performance.now());
        map.once("render", function () { portal.timings.firstRender = Math.round(performance.now()); });
      }
    });
    map.once("load", function () { portal.timings.load = Math.round(performance.now()); });
    map.once("idle", function () { portal.timings.idle = Math.round(performance.now()); portal.ready = true; });
    map.on("idle", function () { markLegend(); if (!pointer) { updateCoords(); } });
    map.on("zoomend", updateHint);
    map.on("moveend", function () { if (!pointer) { updateCoords(); } });
    map.on("mousemove", function (e) { pointer = e.lngLat; requestCoords(e.point); });
    map.on("mouseout", function () { pointer = null; updateCoords(); });
    map.on("click", onMapClick);
    buildLayerList(); buildLegend(); fillDownloadLayers(); updateHint(); updateCoords();
    loadCommunes();
  }

  function clickableLayers() {
    var ids = [];
    CLICK_ORDER.forEach(function (name) { if (layerMeta[name]) { ids = ids.concat(layerMeta[name].styleLayers); } });
    return ids.filter(function (id) { return map.getLayer(id); });
  }
  function onMapClick(e) {
    var found = map.queryRenderedFeatures(e.point, { layers: clickableLayers() });
    if (!found.length) { return; }
    found.sort(function (a, b) { return CLICK_ORDER.indexOf(a.source) - CLICK_ORDER.indexOf(b.source); });
    select(found[0].source, found[0].id, false);
  }

  /* ---------------------------------------------------------------------------------------------- cursor */
  var coordsFrame = 0;
  function requestCoords(point) {
    if (coordsFrame) { return; }
    coordsFrame = requestAnimationFrame(function () { coordsFrame = 0; updateCoords(point); });
  }
  function updateCoords(point) {
    if (!map) { return; }
    var ll = pointer || map.getCenter(), en = VN2000.forward(ll.lng, ll.lat), vi = lang !== "en";
    var latText = number(Math.abs(ll.lat), 6) + "°" + (ll.lat >= 0 ? (vi ? "B" : "N") : (vi ? "N" : "S"));
    var lonText = number(Math.abs(ll.lng), 6) + "°" + (ll.lng >= 0 ? (vi ? "Đ" : "E") : (vi ? "T" : "W"));
    var text = (pointer ? m("cursor") : m("centre")) + " · WGS 84: " + latText + ", " + lonText +
      " · VN-2000 (EPSG:9215): " + (vi ? "X " + number(en[1], 2) + " m, Y " + number(en[0], 2) + " m"
                                       : "N " + number(en[1], 2) + " m, E " + number(en[0], 2) + " m");
    var where = map.queryRenderedFeatures(point || map.project(ll), { layers: ["admin_units-fill"].filter(function (id) { return map.getLayer(id); }) })[0];
    if (where && where.properties.name) { text += " · " + where.properties.name; }
    $("coords").textContent = text;
  }

  /* ---------------------------------------------------------------------------------------------- zoom hint */
  function updateHint() {
    var parcels = layerMeta.cadastral_parcels;
    var show = map && parcels && parcels.visible !== false && map.getZoom() < parcels.minzoom;
    $("hint").hidden = !show;
  }
  $("hint-zoom").addEventListener("click", function () {
    map.easeTo({ zoom: layerMeta.cadastral_parcels.minzoom + 0.5 });
  });

  /* ---------------------------------------------------------------------------------------------- layers */
  function setLayerOpacity(l, factor) {
    l.opacity = factor;
    l.styleLayers.forEach(function (id) {
      var layer = map.getLayer(id);
      if (!layer) { return; }
      meta.opacityKeys.forEach(function (key) {
        if (key.indexOf(layer.type) !== 0) { return; }
        var base = l.baseOpacity[id + key];
        if (base === undefined) { base = l.baseOpacity[id + key] = map.getPaintProperty(id, key); }
        if (typeof base === "number") { map.setPaintProperty(id, key, base * factor); }
      });
    });
  }
  function buildLayerList() {
    var list = $("layer-list");
    list.textContent = "";
    meta.layers.forEach(function (l) {
      l.baseOpacity = l.baseOpacity || {};
      var id = "layer-" + l.id;
      var box = el("input", { type: "checkbox", id: id, checked: l.visible !== false, on: { change: function () {
        l.visible = this.checked;
        l.styleLayers.forEach(function (sid) { map.setLayoutProperty(sid, "visibility", l.visible ? "visible" : "none"); });
        updateHint();
      } } });
      var slider = el("input", { type: "range", min: 0, max: 100, step: 5, value: Math.round((l.opacity == null ? 1 : l.opacity) * 100),
        "aria-label": m("opacity") + ": " + tr(l.title), on: { input: function () { setLayerOpacity(l, this.value / 100); } } });
      list.appendChild(el("li", {}, [
        el("label", { class: "inline", for: id }, [box, tr(l.title)]),
        l.minzoom > 8 ? el("span", { class: "note muted", text: m("fromZoom", { z: l.minzoom }) }) : null,
        slider
      ]));
    });
  }

  /* ---------------------------------------------------------------------------------------------- legend */
  var LEGEND_OTHERS = [
    ["admin_units", "swatch line", ""], ["water_sources", "swatch", "#A8D3F0"],
    ["water_protection_corridors", "swatch", "rgba(47,134,201,.35)"], ["mining_licences", "swatch", "rgba(179,88,6,.45)"],
    ["water_licences", "swatch dot", "#0B4F9C"]
  ];
  function buildLegend() {
    var box = $("legend");
    box.textContent = "";
    meta.legend.forEach(function (group) {
      box.appendChild(el("h3", { text: tr(group.title) }));
      box.appendChild(el("ul", { class: "legend" }, group.items.map(function (item) {
        return el("li", { "data-code": item.code }, [el("span", { class: "swatch", style: "background:" + item.colour }),
          el("b", { text: item.code + (item.approximate ? "*" : "") }), tr(item)]);
      })));
    });
    box.appendChild(el("p", { class: "muted", text: m("legendNote") }));
    meta.layers.filter(function (l) { return l.raster && l.classes; }).forEach(function (l) {  // planning map classes
      box.appendChild(el("h3", { text: tr(l.title) }));
      box.appendChild(el("ul", { class: "legend raster-classes", "data-layer": l.id }, l.classes.map(function (c) {
        return el("li", {}, [el("span", { class: "swatch", style: "background:" + c.colour }), el("b", { text: c.code }), tr(c)]);
      })));
    });
    box.appendChild(el("h3", { text: m("otherLayers") }));
    box.appendChild(el("ul", { class: "legend" }, LEGEND_OTHERS.filter(function (o) { return layerMeta[o[0]]; }).map(function (o) {
      return el("li", {}, [el("span", { class: o[1], style: o[2] ? "background:" + o[2] : null }),
        o[0] === "admin_units" ? m("commune") : tr(layerMeta[o[0]].title)]);
    })));
    markLegend();
  }
  function markLegend() {  // fade the land-use codes that are not in the view (parcels drawn only)
    if (!map || !map.getLayer("cadastral_parcels-fill")) { return; }
    var present = null;
    if (map.getZoom() >= layerMeta.cadastral_parcels.minzoom) {
      present = {};
      map.queryRenderedFeatures({ layers: ["cadastral_parcels-fill"] }).forEach(function (f) { present[f.properties.land_use_code] = true; });
    }
    document.querySelectorAll("#legend li[data-code]").forEach(function (li) {
      li.classList.toggle("absent", !!present && !present[li.dataset.code]);
    });
  }

  /* ---------------------------------------------------------------------------------------------- communes */
  async function loadCommunes() {
    try {
      var data = await getJson(itemsUrl("admin_units", { skipGeometry: "true", limit: 1000, properties: "code,name,level,valid_to" }));
      communes = data.features.map(function (f) {
        var p = f.properties;
        return { code: p.code, name: p.name, level: p.level, former: !!p.valid_to, key: fold(p.name) };
      }).sort(function (a, b) { return a.former - b.former || a.name.localeCompare(b.name, "vi"); });
      communes.forEach(function (c) { if (!communeByCode[c.code] || !c.former) { communeByCode[c.code] = c; } });
      portal.communes = communes.length;
      redrawInfo();
    } catch (err) { toast(err.message, true); }
  }
  function communeLabel(c) { return c.name + " (" + m(c.level) + (c.former ? ", " + m("former") : "") + ")"; }
  var communeInput = $("commune"), communeList = $("commune-list"), communeChoice = null, active = -1;
  function matches(text) {
    var key = fold(text);
    if (!key) { return []; }
    var starts = [], contains = [];
    communes.forEach(function (c) {
      var i = c.key.indexOf(key);
      if (i === 0 || c.code === key) { starts.push(c); } else if (i > 0) { contains.push(c); }
    });
    return starts.concat(contains).slice(0, 30);
  }
  function renderOptions() {
    var found = matches(communeInput.value);
    communeList.textContent = "";
    active = -1;
    found.forEach(function (c, i) {
      communeList.appendChild(el("li", { role: "option", id: "commune-opt-" + i, "aria-selected": "false", "data-code": c.code,
        on: { mousedown: function (e) { e.preventDefault(); chooseCommune(c); } } }, [c.name + " ", el("small", { text: "(" + m(c.level) + (c.former ? ", " + m("former") : "") + ")" })]));
    });
    communeList.hidden = !found.length;
    communeInput.setAttribute("aria-expanded", found.length ? "true" : "false");
  }
  function chooseCommune(c) {
    communeChoice = c;
    communeInput.value = communeLabel(c);
    communeList.hidden = true;
    communeInput.setAttribute("aria-expanded", "false");
    communeInput.removeAttribute("aria-activedescendant");
  }
  communeInput.addEventListener("input", function () { communeChoice = null; renderOptions(); });
  communeInput.addEventListener("blur", function () { communeList.hidden = true; communeInput.setAttribute("aria-expanded", "false"); });
  communeInput.addEventListener("keydown", function (e) {
    var options = communeList.querySelectorAll("li");
    if (e.key === "ArrowDown" || e.key === "ArrowUp") {
      if (communeList.hidden) { renderOptions(); options = communeList.querySelectorAll("li"); }
      if (!options.length) { return; }
      e.preventDefault();
      active = (active + (e.key === "ArrowDown" ? 1 : -1) + options.length) % options.length;
      options.forEach(function (o, i) { o.setAttribute("aria-selected", i === active ? "true" : "false"); });
      communeInput.setAttribute("aria-activedescendant", options[active].id);
      options[active].scrollIntoView({ block: "nearest" });
    } else if (e.key === "Enter" && !communeList.hidden && active >= 0) {
      e.preventDefault();
      chooseCommune(communeByCode[options[active].dataset.code] || communes.find(function (c) { return c.code === options[active].dataset.code; }));
    } else if (e.key === "Escape") { communeList.hidden = true; }
  });
  function resolveCommune() {  // the picked commune, or the one the typed text names unambiguously
    if (communeChoice) { return communeChoice; }
    var key = fold(communeInput.value.replace(/\(.*\)$/, ""));
    if (!key) { return null; }
    var exact = communes.filter(function (c) { return c.key === key || c.code === key; });
    var current = exact.filter(function (c) { return !c.former; });
    return current.length === 1 ? current[0] : exact.length === 1 ? exact[0] : null;
  }

  /* ---------------------------------------------------------------------------------------------- searches */
  function showResults(items, emptyKey, more) {
    var box = $("results");
    box.textContent = "";
    if (!items.length) { box.appendChild(el("p", { class: "warn", text: m(emptyKey) })); return; }
    if (items.length === 1) { items[0].pick(); return; }
    box.appendChild(el("p", { text: m("several", { n: items.length }) + (more ? " " + m("more") : "") }));
    box.appendChild(el("ul", {}, items.map(function (item) {
      return el("li", {}, [el("button", { type: "button", on: { click: item.pick } }, [el("b", { text: item.title }), el("br"), el("span", { class: "muted", text: item.sub })])]);
    })));
  }
  function parcelTitle(p) { return m("parcelHead", { p: p.parcel_no, s: p.map_sheet_no }); }
  function communeName(code) { var c = communeByCode[code]; return c ? communeLabel(c) : code; }

  $("parcel-form").addEventListener("submit", async function (e) {
    e.preventDefault();
    var id = $("parcel-id").value.trim(), sheet = $("sheet").value.trim(), no = $("parcel").value.trim(), filters;
    if (id) {
      filters = ["parcel_id = " + q(id.toLowerCase())];  // a GeoHash is lower case
    } else {
      if (!communeInput.value.trim() && !sheet && !no) { return showResults([], "needQuery"); }
      var commune = resolveCommune();
      if (!commune) { return showResults([], "needCommune"); }
      if (!/^\d+$/.test(sheet) || !no) { return showResults([], "needSheet"); }
      // Sheets are numbered per pre-2025 commune (sheet_commune_code: the natural key, indexed); a commune merged in
      // 2025 is found through commune_code, asked only when the first, exact question finds nothing.
      var rest = " AND map_sheet_no = " + Number(sheet) + " AND ";
      filters = ["sheet_commune_code = " + q(commune.code) + rest + "parcel_no = " + q(no),
                 "(sheet_commune_code = " + q(commune.code) + " OR commune_code = " + q(commune.code) + ")" + rest +
                 "CASEI(parcel_no) = CASEI(" + q(no) + ")"];
    }
    $("results").textContent = m("loading");
    try {
      var data;
      for (var i = 0; i < filters.length; i++) {
        data = await getJson(itemsUrl("cadastral_parcels", { filter: filters[i], "filter-lang": "cql2-text", limit: 20 }));
        if (data.features.length) { break; }
      }
      showResults(data.features.map(function (f) {
        return { title: parcelTitle(f.properties), sub: communeName(f.properties.sheet_commune_code) + " · " + (f.properties.parcel_id || ""),
          pick: function () { $("results").textContent = ""; showFeature("cadastral_parcels", f, true); } };
      }), "noParcel", data.features.length === 20);
    } catch (err) { $("results").textContent = err.message; }
  });

  $("licence-form").addEventListener("submit", async function (e) {
    e.preventDefault();
    var text = $("licence").value.trim();
    if (!text) { return showResults([], "needLicence"); }
    var filter = "CASEI(licence_no) LIKE CASEI(" + q("%" + likeEscape(text) + "%") + ")";
    $("results").textContent = m("loading");
    try {
      var pages = await Promise.all(["mining_licences", "water_licences"].filter(function (l) { return layerMeta[l]; }).map(function (layer) {
        return getJson(itemsUrl(layer, { filter: filter, "filter-lang": "cql2-text", limit: 20 })).then(function (d) { return [layer, d]; });
      }));
      var items = [], more = false;
      pages.forEach(function (page) {
        var layer = page[0];
        more = more || page[1].features.length === 20;
        page[1].features.forEach(function (f) {
          var p = f.properties;
          items.push({ title: p.licence_no + (p.point_no ? " · " + p.point_no : ""), sub: tr(layerMeta[layer].title) + " · " + (p.mine_name || p.work_name || p.holder_public || ""),
            pick: function () { $("results").textContent = ""; showFeature(layer, f, true); } });
        });
      });
      showResults(items, "noLicence", more);
    } catch (err) { $("results").textContent = err.message; }
  });

  /* ---------------------------------------------------------------------------------------------- selection */
  async function select(layer, id, fly) {
    try {
      var feature = await getJson(API + "/collections/" + layer + "/items/" + encodeURIComponent(id) + "?f=json");
      showFeature(layer, feature, fly);
    } catch (err) { toast(err.message, true); }
  }
  function setSource(id, features) {
    var source = map.getSource(id);
    if (source) { source.setData({ type: "FeatureCollection", features: features }); }
  }
  function zoomTo(geometry) {
    var b = bounds(geometry), phone = window.matchMedia("(max-width: 700px)").matches;
    var collapsed = $("panel").classList.contains("collapsed");
    map.fitBounds([[b[0], b[1]], [b[2], b[3]]], { maxZoom: 18, duration: 800,
      padding: phone ? { top: 40, left: 30, right: 30, bottom: collapsed ? 60 : Math.round(window.innerHeight * 0.45) }
                     : { top: 60, left: collapsed ? 60 : 420, right: 60, bottom: 60 } });
  }
  function showFeature(layer, feature, fly) {
    selected = portal.selection = { layer: layer, feature: feature };
    lastInfo = { layer: layer, feature: feature, overlaps: null };
    setSource("selection", [feature]);
    setSource("related", []);
    if (fly && feature.geometry) { zoomTo(feature.geometry); }
    $("dl-selection").disabled = false;
    redrawInfo();
    showTab("tab-info");
    if (layer === "cadastral_parcels" && feature.geometry) { findOverlaps(feature); }
  }
  async function findOverlaps(feature) {
    var layers = ["mining_licences", "water_protection_corridors"].filter(function (l) { return layerMeta[l]; });
    var body = JSON.stringify({ op: "s_intersects", args: [{ property: "geometry" }, feature.geometry] });
    try {
      var pages = await Promise.all(layers.map(function (layer) {  // CQL2 JSON in a POST: a parcel outline can be long
        return getJson(itemsUrl(layer, { limit: 50 }), { method: "POST", body: body, headers: { "Content-Type": "application/json", Accept: "application/geo+json" } });
      }));
      if (!lastInfo || lastInfo.feature !== feature) { return; }
      lastInfo.overlaps = {};
      var related = [];
      layers.forEach(function (layer, i) { lastInfo.overlaps[layer] = pages[i].features; related = related.concat(pages[i].features); });
      setSource("related", related);
    } catch (err) {
      if (lastInfo && lastInfo.feature === feature) { lastInfo.overlaps = { error: err.message }; }
    }
    redrawInfo();
  }
  function clearSelection() {
    selected = portal.selection = lastInfo = null;
    setSource("selection", []); setSource("related", []);
    $("dl-selection").disabled = true;
    if (document.querySelector("input[name=scope]:checked").value === "selection") { document.querySelector("input[name=scope][value=view]").checked = true; }
    redrawInfo();
  }

  function value(layer, name, v) {
    var field = layerMeta[layer].fields[name] || {};
    if (v === null || v === undefined || v === "") { return null; }
    if (field.values && field.values[v]) { return tr(field.values[v]); }
    if (field.codes === "admin_units") { return communeName(v); }
    if (field.codes && meta.codes[field.codes]) {
      return String(v).split(field.multi || /\s/).map(function (code) {  // short official codes (ONT) stay shown
        var named = meta.codes[field.codes][code];
        return !named ? code : code.length <= 4 ? code + " — " + tr(named) : tr(named);
      }).join("; ");
    }
    if (field.type === "boolean") { return v ? m("yes") : m("no"); }
    if (field.type === "date") { return date(v); }
    if (field.type === "number" || field.type === "integer") { return number(v) + (field.unit ? " " + field.unit : ""); }
    return String(v);
  }
  function attributes(layer, props, skip) {
    var fields = layerMeta[layer].fields, rows = [];
    Object.keys(fields).forEach(function (name) {
      if (skip && skip.indexOf(name) >= 0) { return; }
      var shown = value(layer, name, props[name]);
      if (shown !== null) { rows.push(el("dt", { text: tr(fields[name]).replace(/ \((m²|ha|m)\)$/, "") }), el("dd", { text: shown })); }
    });
    return el("dl", { class: "attrs" }, rows);
  }
  function downloadButtons() {
    return ["json", "gpkg", "csv"].map(function (f) {
      return el("button", { type: "button", class: "secondary", "data-download": f, on: { click: function () { download(f, "selection"); } } },
        [m("download") + " " + { json: "GeoJSON", gpkg: "GeoPackage", csv: "CSV" }[f]]);
    });
  }
  function redrawInfo() {
    var box = $("p-info");
    if (!lastInfo) {
      box.textContent = "";
      box.appendChild(el("p", { class: "muted", text: lang === "en" ? EN.infoEmpty : VI.infoEmpty || "" }));
      return;
    }
    var layer = lastInfo.layer, f = lastInfo.feature, p = f.properties || {}, parts = [];
    if (layer === "cadastral_parcels") {
      parts.push(el("h2", { text: parcelTitle(p) }), el("p", { class: "sub", text: communeName(p.commune_code) +
        (p.sheet_commune_code && p.sheet_commune_code !== p.commune_code ? " · " + m("sheetOf", { s: p.map_sheet_no }) + ", " + communeName(p.sheet_commune_code) : "") }));
      parts.push(attributes(layer, p, ["land_use_codes", "land_use_code", "map_sheet_no", "parcel_no", "commune_code", "sheet_commune_code"]));
      parts.push(el("h3", { text: m("landUse") }), el("ul", { class: "codes" }, String(p.land_use_codes || "").split("+").filter(Boolean).map(function (code) {
        var lu = meta.landUse[code];
        return el("li", {}, [el("span", { class: "swatch", style: "background:" + (lu ? lu.colour : "#ddd") }), el("b", { text: code }), lu ? tr(lu) : ""]);
      })));
      parts.push(el("h3", { text: m("overlaps") }));
      var o = lastInfo.overlaps;
      if (!o) { parts.push(el("p", { class: "muted", text: m("checking") })); } else if (o.error) { parts.push(el("p", { class: "warn", text: o.error })); } else {
        ["mining_licences", "water_protection_corridors"].forEach(function (l) {
          if (!o[l]) { return; }
          parts.push(el("h4", { text: tr(layerMeta[l].title) }));
          parts.push(o[l].length ? el("ul", { class: "related", "data-layer": l }, o[l].map(function (r) {
            var rp = r.properties, label = l === "mining_licences" ? rp.licence_no + " · " + value(l, "mineral", rp.mineral) + " · " + value(l, "status", rp.status)
              : (rp.source_name || rp.source_code) + " · " + value(l, "width_m", rp.width_m);
            return el("li", {}, [el("button", { type: "button", on: { click: function () { showFeature(l, r, true); } } }, [label])]);
          })) : el("p", { class: "muted", text: m("none") }));
        });
      }
    } else {
      var key = layerMeta[layer].key.map(function (k) { return p[k]; }).filter(function (v) { return v != null; }).join(" · ");
      parts.push(el("h2", { text: tr(layerMeta[layer].title) }), el("p", { class: "sub", text: key }), attributes(layer, p));
    }
    parts.push(el("div", { class: "actions" }, [
      el("button", { type: "button", on: { click: function () { if (f.geometry) { zoomTo(f.geometry); } } } }, [m("zoomTo")]),
      el("button", { type: "button", class: "secondary", on: { click: clearSelection } }, [m("clear")])
    ].concat(downloadButtons())));
    parts.push(el("p", { class: "msg", id: "info-msg", "aria-live": "polite" }));
    box.textContent = "";
    parts.forEach(function (node) { box.appendChild(node); });
  }

  /* ---------------------------------------------------------------------------------------------- downloads */
  function fillDownloadLayers() {
    var selectBox = $("dl-layer"), current = selectBox.value || "cadastral_parcels";
    selectBox.textContent = "";
    meta.layers.filter(function (l) { return !l.external && l.download !== false; }).forEach(function (l) {
      selectBox.appendChild(el("option", { value: l.id, selected: l.id === current }, [tr(l.title)]));
    });
    $("dl-selection").disabled = !selected;
  }
  document.querySelectorAll("#download-form [data-format]").forEach(function (button) {
    button.addEventListener("click", function () { download(button.dataset.format, document.querySelector("input[name=scope]:checked").value); });
  });
  function selectionFilter() {
    var l = layerMeta[selected.layer], p = selected.feature.properties;
    return l.key.map(function (k) {
      var v = p[k];
      var type = (l.fields[k] || {}).type;
      return v === null || v === undefined ? k + " IS NULL" : typeof v === "number" ? k + " = " + v
        : type === "date" ? k + " = DATE(" + q(v) + ")" : k + " = " + q(v);
    }).join(" AND ");
  }
  async function download(format, scope) {
    var out = scope === "selection" && $("info-msg") && !$("p-info").hidden ? $("info-msg") : $("dl-msg");
    out.className = "msg";
    var layer, params = { limit: meta.maxItems };
    if (scope === "selection") {
      if (!selected) { out.textContent = m("noSelection"); return; }
      layer = selected.layer;
      params.filter = selectionFilter();
      params["filter-lang"] = "cql2-text";
    } else {
      layer = $("dl-layer").value;
      var b = map.getBounds();
      params.bbox = [b.getWest(), b.getSouth(), b.getEast(), b.getNorth()].map(function (v) { return v.toFixed(6); }).join(",");
    }
    out.textContent = m("counting");
    var n;
    try { n = (await getJson(itemsUrl(layer, Object.assign({}, params, { resulttype: "hits" })))).numberMatched; } catch (err) { out.textContent = err.message; return; }
    if (n === 0) { out.textContent = m("empty"); return; }
    var name = { json: "GeoJSON", gpkg: "GeoPackage", csv: "CSV" }[format];
    if (n > meta.maxItems) {
      out.className = "msg warn";
      out.textContent = m("tooMany", { n: number(n, 0), m: number(meta.maxItems, 0) });
    } else { out.textContent = m("started", { n: number(n, 0), f: name }); }
    params.f = format;
    var link = el("a", { href: itemsUrl(layer, params), download: layer + "." + { json: "geojson", gpkg: "gpkg", csv: "csv" }[format], hidden: true });
    document.body.appendChild(link);
    link.click();
    link.remove();
    portal.lastDownload = { layer: layer, format: format, url: link.href, matched: n };
  }

  document.querySelectorAll(".api-url").forEach(function (node) { node.textContent = API; });
  portal.fold = fold;
  portal.select = select;
  start();
})();
