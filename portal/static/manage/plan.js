/* The floor plan editor: draw zones, place sensors and draw a scale line on the plan's SVG.
 *
 * The page works without this script: every action is a plain form post. This script only draws
 * on the plan and fills those forms' fields (corners in metres, sensor x/y, the scale line's ends
 * in picture pixels), so what is saved is always what the fields say. No innerHTML anywhere. */
(function () {
  "use strict";

  var NS = "http://www.w3.org/2000/svg";
  var editor = document.getElementById("plan-editor");
  var svg = editor && editor.querySelector("svg.plan");
  if (!editor || !svg) { return; }

  var $ = function (id) { return document.getElementById(id); };
  var zoneForm = $("zone-form"), zoneDelete = $("zone-delete-form");
  var pointsField = $("zone-points"), nameField = $("zone-name"), colourField = $("zone-colour");
  var sensorForm = $("sensor-form"), sensorDelete = $("sensor-delete-form");
  var status = $("plan-status");
  var text = editor.dataset;
  var metresPerPx = parseFloat(text.metresPerPx);

  // Handles are sized to the plan, so they stay the same size on screen whatever the store's size.
  var box = svg.viewBox.baseVal;
  var HANDLE_R = Math.max(box.width, box.height) / 110;
  var DRAG_THRESHOLD_PX = 3; // a press that moves less than this is a click, not a drag

  var mode = "idle"; // idle | draw | edit | sensor | scale
  var corners = []; // [[x, y], ...] in metres: the zone being drawn or edited
  var scaleEnds = []; // the scale line's ends, in metres
  var drag = null; // {kind: "corner"|"sensor", index, el, startX, startY, moved}
  var suppressClickUntil = 0; // the click that ends a press on a handle or sensor adds nothing
  var CLICK_AFTER_PRESS_MS = 400;
  var editedPolygon = null, selectedSensor = null;

  var layer = document.createElementNS(NS, "g");
  layer.setAttribute("class", "editor-layer");
  svg.appendChild(layer);

  function round(v) { return Math.round(v * 100) / 100; } // centimetres are plenty on a shop floor

  function toPlan(evt) {
    var matrix = svg.getScreenCTM();
    if (!matrix) { return [0, 0]; }
    var p = new DOMPoint(evt.clientX, evt.clientY).matrixTransform(matrix.inverse());
    return [round(p.x), round(p.y)];
  }

  function el(name, attrs) {
    var node = document.createElementNS(NS, name);
    Object.keys(attrs).forEach(function (k) { node.setAttribute(k, String(attrs[k])); });
    return node;
  }

  function say(message) { if (status && message) { status.textContent = message; } }

  // -- corners <-> the textarea ---------------------------------------------------------------
  function formatCorners(list) {
    return list.map(function (p) { return p[0] + ", " + p[1]; }).join("; ");
  }

  function parseCorners(value) {
    var found = [];
    value.split(/[;\n]/).forEach(function (chunk) {
      var parts = chunk.trim().split(/[\s,]+/).filter(Boolean);
      if (parts.length === 2 && isFinite(parts[0]) && isFinite(parts[1])) {
        found.push([parseFloat(parts[0]), parseFloat(parts[1])]);
      }
    });
    return found;
  }

  function syncField() { pointsField.value = formatCorners(corners); }

  // -- drawing the editor layer ---------------------------------------------------------------
  function redraw() {
    while (layer.firstChild) { layer.removeChild(layer.firstChild); }
    if (corners.length) {
      var pts = corners.map(function (p) { return p[0] + "," + p[1]; }).join(" ");
      var shape = el(corners.length > 2 ? "polygon" : "polyline", { "class": "draft", points: pts });
      if (colourField && /^#[0-9a-f]{6}$/i.test(colourField.value)) {
        shape.style.fill = colourField.value; // CSSOM, allowed by the CSP (a style attribute is not)
      }
      layer.appendChild(shape);
      corners.forEach(function (p, index) {
        var handle = el("circle", { "class": "handle", cx: p[0], cy: p[1], r: HANDLE_R });
        handle.dataset.index = String(index);
        layer.appendChild(handle);
      });
    }
    if (scaleEnds.length) {
      var a = scaleEnds[0], b = scaleEnds[scaleEnds.length - 1];
      layer.appendChild(el("line", { "class": "scale-line", x1: a[0], y1: a[1], x2: b[0], y2: b[1] }));
      scaleEnds.forEach(function (p) {
        layer.appendChild(el("circle", { "class": "scale-end", cx: p[0], cy: p[1], r: HANDLE_R * 0.7 }));
      });
    }
  }

  function setHeading(id, label) { var h = $(id); if (h) { h.textContent = label; } }

  function showEdited(polygon) {
    if (editedPolygon) { editedPolygon.classList.remove("editing"); }
    editedPolygon = polygon;
    if (polygon) { polygon.classList.add("editing"); }
  }

  // -- zones ----------------------------------------------------------------------------------
  function startNewZone() {
    mode = "draw";
    corners = [];
    scaleEnds = [];
    showEdited(null);
    zoneForm.action = text.zonesUrl;
    zoneForm.dataset.zoneId = "";
    nameField.value = "";
    syncField();
    zoneDelete.hidden = true;
    setHeading("zone-heading", text.textNewZone);
    say(text.hintDraw);
    redraw();
    nameField.focus({ preventScroll: true });
  }

  function selectZone(polygon) {
    var id = polygon.dataset.zoneId;
    mode = "edit";
    scaleEnds = [];
    corners = parseCorners(polygon.getAttribute("points").replace(/ /g, ";"));
    showEdited(polygon);
    zoneForm.action = text.zonesUrl + "/" + id;
    zoneForm.dataset.zoneId = id;
    nameField.value = polygon.dataset.zoneName || "";
    if (colourField) { colourField.value = polygon.getAttribute("fill") || colourField.value; }
    syncField();
    zoneDelete.action = text.zonesUrl + "/" + id + "/delete";
    zoneDelete.hidden = false;
    setHeading("zone-heading", text.textEditZone);
    say(text.hintEdit);
    redraw();
  }

  // -- sensors --------------------------------------------------------------------------------
  function startNewSensor() {
    mode = "sensor";
    scaleEnds = [];
    selectSensorCircle(null);
    sensorForm.action = text.sensorsUrl;
    sensorForm.dataset.sensorId = "";
    $("sensor-id").readOnly = false;
    $("sensor-id").value = "";
    sensorDelete.hidden = true;
    setHeading("sensor-heading", text.textNewSensor);
    say(text.hintSensor);
    redraw();
    $("sensor-id").focus({ preventScroll: true });
  }

  function selectSensorCircle(circle) {
    if (selectedSensor) { selectedSensor.classList.remove("selected"); }
    selectedSensor = circle;
    if (circle) { circle.classList.add("selected"); }
  }

  function selectSensor(circle) {
    var id = circle.dataset.sensorId;
    mode = "sensor";
    selectSensorCircle(circle);
    sensorForm.action = text.sensorsUrl + "/" + encodeURIComponent(id);
    sensorForm.dataset.sensorId = id;
    $("sensor-id").value = id;
    $("sensor-id").readOnly = true;
    $("sensor-kind").value = circle.dataset.sensorKind || "wifi";
    $("sensor-x").value = circle.getAttribute("cx");
    $("sensor-y").value = circle.getAttribute("cy");
    $("sensor-rssi").value = circle.dataset.rssiAt1m || "";
    $("sensor-zone").value = circle.dataset.zoneId || "";
    sensorDelete.action = text.sensorsUrl + "/" + encodeURIComponent(id) + "/delete";
    sensorDelete.hidden = false;
    setHeading("sensor-heading", text.textEditSensor);
    say(text.hintSensor);
  }

  function placeSensor(p) {
    $("sensor-x").value = p[0];
    $("sensor-y").value = p[1];
    if (selectedSensor) {
      selectedSensor.setAttribute("cx", p[0]);
      selectedSensor.setAttribute("cy", p[1]);
    } else {
      var marker = layer.querySelector(".sensor-marker") ||
        layer.appendChild(el("circle", { "class": "sensor-marker", r: HANDLE_R * 1.2 }));
      marker.setAttribute("cx", p[0]);
      marker.setAttribute("cy", p[1]);
    }
  }

  // -- the scale line -------------------------------------------------------------------------
  function startScale() {
    mode = "scale";
    scaleEnds = [];
    say(text.hintScale);
    redraw();
  }

  function addScaleEnd(p) {
    if (scaleEnds.length >= 2) { scaleEnds = []; }
    scaleEnds.push(p);
    redraw();
    if (scaleEnds.length === 2 && metresPerPx > 0) {
      // The form takes the ends in picture pixels: exact whatever the current scale.
      ["x1", "y1", "x2", "y2"].forEach(function (name, i) {
        $("scale-" + name).value = String(scaleEnds[i >> 1][i & 1] / metresPerPx);
      });
      say(text.hintScaleDone);
      $("scale-length").focus({ preventScroll: true });
    }
  }

  // -- pointer input --------------------------------------------------------------------------
  svg.addEventListener("pointerdown", function (evt) {
    var target = evt.target;
    if (evt.button !== 0) { return; }
    if (target.classList.contains("handle")) {
      drag = { kind: "corner", index: Number(target.dataset.index), el: target };
    } else if (target.classList.contains("sensor") && mode !== "draw" && mode !== "scale") {
      selectSensor(target);
      drag = { kind: "sensor", el: target };
    } else {
      return;
    }
    drag.startX = evt.clientX;
    drag.startY = evt.clientY;
    drag.moved = false;
    svg.setPointerCapture(evt.pointerId);
    evt.preventDefault();
  });

  svg.addEventListener("pointermove", function (evt) {
    if (!drag) { return; }
    if (!drag.moved && Math.hypot(evt.clientX - drag.startX, evt.clientY - drag.startY) < DRAG_THRESHOLD_PX) {
      return;
    }
    drag.moved = true;
    var p = toPlan(evt);
    if (drag.kind === "corner") {
      corners[drag.index] = p;
      syncField();
      redraw();
    } else {
      placeSensor(p);
    }
  });

  function endDrag(evt) {
    if (!drag) { return; }
    suppressClickUntil = performance.now() + CLICK_AFTER_PRESS_MS;
    if (svg.hasPointerCapture(evt.pointerId)) { svg.releasePointerCapture(evt.pointerId); }
    drag = null;
  }
  svg.addEventListener("pointerup", endDrag);
  svg.addEventListener("pointercancel", endDrag);

  svg.addEventListener("click", function (evt) {
    if (performance.now() < suppressClickUntil) { suppressClickUntil = 0; return; }
    var target = evt.target;
    var p = toPlan(evt);
    if (mode === "draw") {
      corners.push(p);
      syncField();
      redraw();
    } else if (mode === "scale") {
      addScaleEnd(p);
    } else if (mode === "sensor" && !selectedSensor) {
      placeSensor(p);
    } else if (target.classList.contains("zone")) {
      selectZone(target);
    }
  });

  // -- buttons and fields ---------------------------------------------------------------------
  $("plan-toolbar").hidden = false;
  $("new-zone").addEventListener("click", startNewZone);
  $("undo-corner").addEventListener("click", function () {
    corners.pop();
    syncField();
    redraw();
  });
  $("place-sensor").addEventListener("click", startNewSensor);
  if ($("draw-scale")) { $("draw-scale").addEventListener("click", startScale); }
  pointsField.addEventListener("input", function () { corners = parseCorners(pointsField.value); redraw(); });
  if (colourField) { colourField.addEventListener("input", redraw); }

  document.querySelectorAll("form.confirm").forEach(function (form) {
    form.addEventListener("submit", function (evt) {
      if (!window.confirm(text.confirmDelete)) { evt.preventDefault(); }
    });
  });

  // A form shown again after a mistake (or an edit picked with ?zone=) keeps what was drawn.
  corners = parseCorners(pointsField.value);
  var editingId = zoneForm.dataset.zoneId;
  if (editingId) {
    mode = "edit";
    showEdited(svg.querySelector('polygon.zone[data-zone-id="' + editingId + '"]'));
  } else if (corners.length) {
    mode = "draw";
  }
  var sensorId = sensorForm.dataset.sensorId;
  if (sensorId) {
    svg.querySelectorAll("circle.sensor").forEach(function (circle) {
      if (circle.dataset.sensorId === sensorId) { selectSensorCircle(circle); mode = "sensor"; }
    });
  }
  redraw();
}());
