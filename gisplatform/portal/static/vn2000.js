/* WGS 84 longitude/latitude -> VN-2000 / TM-3 107-15 (EPSG:9215) easting/northing, for the cursor readout.
 *
 * The same operation as gisplatform.crs.transform_xy(..., 4326, 9215) (PROJ with EPSG:6960), in three steps:
 * 1. geodetic -> geocentric on the WGS 84 ellipsoid (height 0, as PROJ does for 2D points);
 * 2. the inverse of EPSG:6960 "VN-2000 to WGS 84 (2)". Its rotations are published in the coordinate-frame
 *    convention; gisplatform/crs.py TOWGS84_9215 holds them with POSITION-VECTOR signs (+towgs84), which is
 *    what R below uses: X_wgs84 = T + (1 + s) R X_vn2000, so X_vn2000 = R^T (X_wgs84 - T) / (1 + s).
 *    (Coordinate-frame signs here would put the point ~0.8 m off: shared/domain §1.4.)
 * 3. geocentric -> geodetic (VN-2000 uses the WGS 84 ellipsoid too), then Transverse Mercator, lon0 107.25°,
 *    k0 0.9999, false easting 500 000 m, with Krüger's series to the 6th order (sub-millimetre).
 */
(function (root) {
  "use strict";
  var A = 6378137, F = 1 / 298.257223563, E2 = F * (2 - F), E = Math.sqrt(E2);
  var SEC = Math.PI / 648000, RAD = Math.PI / 180;
  // gisplatform.crs.TOWGS84_9215 (position vector): tx, ty, tz (m), rx, ry, rz (arc-seconds), ds (ppm)
  var TX = -191.90441429, TY = -39.30318279, TZ = -111.45032835;
  var RX = 0.00928836 * SEC, RY = -0.01975479 * SEC, RZ = 0.00427372 * SEC, S = 0.252906278e-6;
  var LON0 = 107.25, K0 = 0.9999, FE = 500000;

  var n = F / (2 - F), n2 = n * n, n3 = n2 * n, n4 = n3 * n, n5 = n4 * n, n6 = n5 * n;
  var AR = A / (1 + n) * (1 + n2 / 4 + n4 / 64 + n6 / 256); // rectifying radius
  var ALPHA = [
    n / 2 - 2 * n2 / 3 + 5 * n3 / 16 + 41 * n4 / 180 - 127 * n5 / 288 + 7891 * n6 / 37800,
    13 * n2 / 48 - 3 * n3 / 5 + 557 * n4 / 1440 + 281 * n5 / 630 - 1983433 * n6 / 1935360,
    61 * n3 / 240 - 103 * n4 / 140 + 15061 * n5 / 26880 + 167603 * n6 / 181440,
    49561 * n4 / 161280 - 179 * n5 / 168 + 6601661 * n6 / 7257600,
    34729 * n5 / 80640 - 3418889 * n6 / 1995840,
    212378941 * n6 / 319334400
  ];

  function geocentric(lon, lat) {
    var phi = lat * RAD, lam = lon * RAD, sp = Math.sin(phi), cp = Math.cos(phi);
    var nu = A / Math.sqrt(1 - E2 * sp * sp);
    return [nu * cp * Math.cos(lam), nu * cp * Math.sin(lam), nu * (1 - E2) * sp];
  }

  function geodetic(x, y, z) {
    var p = Math.hypot(x, y), phi = Math.atan2(z, p * (1 - E2)), nu, h;
    for (var i = 0; i < 6; i++) {
      var sp = Math.sin(phi);
      nu = A / Math.sqrt(1 - E2 * sp * sp);
      h = p / Math.cos(phi) - nu;
      phi = Math.atan2(z, p * (1 - E2 * nu / (nu + h)));
    }
    return [Math.atan2(y, x) / RAD, phi / RAD];
  }

  function wgs84ToVn2000Geocentric(x, y, z) {
    var dx = x - TX, dy = y - TY, dz = z - TZ, k = 1 / (1 + S);
    // R^T of R = [[1, -rz, ry], [rz, 1, -rx], [-ry, rx, 1]] (position vector, small angles)
    return [k * (dx + RZ * dy - RY * dz), k * (-RZ * dx + dy + RX * dz), k * (RY * dx - RX * dy + dz)];
  }

  function transverseMercator(lon, lat) {
    var phi = lat * RAD, lam = (lon - LON0) * RAD, sp = Math.sin(phi);
    var t = Math.sinh(Math.atanh(sp) - E * Math.atanh(E * sp));
    var xi = Math.atan2(t, Math.cos(lam)), eta = Math.atanh(Math.sin(lam) / Math.sqrt(1 + t * t));
    var x = xi, y = eta;
    for (var j = 1; j <= 6; j++) {
      x += ALPHA[j - 1] * Math.sin(2 * j * xi) * Math.cosh(2 * j * eta);
      y += ALPHA[j - 1] * Math.cos(2 * j * xi) * Math.sinh(2 * j * eta);
    }
    return [FE + K0 * AR * y, K0 * AR * x];
  }

  /** [easting, northing] in metres (EPSG:9215) of a WGS 84 longitude, latitude in degrees. */
  function forward(lon, lat) {
    var g = geocentric(lon, lat);
    var v = wgs84ToVn2000Geocentric(g[0], g[1], g[2]);
    var ll = geodetic(v[0], v[1], v[2]);
    return transverseMercator(ll[0], ll[1]);
  }

  root.VN2000 = { forward: forward };
})(window);
