// The live store: occupancy on the floor plan and the lists below it follow the server's
// snapshots (Server-Sent Events from /manage/live/stream). A file, not inline script (the CSP
// forbids inline); data reaches the page only through textContent and CSSOM, never innerHTML,
// so a member's name or an offer's title can never become markup. Without this script the page
// is the server's snapshot with a refresh link.
(function () {
  "use strict";

  // EventSource ends a stream on purpose every few minutes and reconnects at once; only say
  // "reconnecting" when it has not come back within this long.
  var RECONNECT_GRACE_MS = 4000;

  var root = document.getElementById("live-store");
  if (!root || !window.EventSource) {
    return;
  }
  var statusLine = document.getElementById("live-status");
  var refreshLink = document.getElementById("live-refresh");
  var reconnectTimer = null;

  function cell(row, text, className) {
    var td = document.createElement("td");
    if (className) {
      var badge = document.createElement("span");
      badge.className = className;
      badge.textContent = text;
      td.appendChild(badge);
    } else {
      td.textContent = text;
    }
    row.appendChild(td);
  }

  // Replace a table body's rows; each item becomes one row of [text, badge class or ""] cells.
  function fillRows(bodyId, emptyId, items, cellsOf) {
    var body = document.getElementById(bodyId);
    var empty = document.getElementById(emptyId);
    if (!body) {
      return;
    }
    while (body.firstChild) {
      body.removeChild(body.firstChild);
    }
    items.forEach(function (item) {
      var row = document.createElement("tr");
      cellsOf(item).forEach(function (pair) {
        cell(row, pair[0], pair[1]);
      });
      body.appendChild(row);
    });
    if (empty) {
      empty.hidden = items.length > 0;
    }
  }

  function paintZone(id, intensity) {
    var polygons = document.querySelectorAll('.plan .zone[data-zone-id="' + id + '"]');
    Array.prototype.forEach.call(polygons, function (polygon) {
      polygon.style.fillOpacity = String(intensity);
    });
  }

  function showZones(zones) {
    zones.forEach(function (zone) {
      var id = String(zone.id);
      var label = document.querySelector('.occupancy[data-zone-id="' + id + '"]');
      if (label) {
        label.textContent = String(zone.count);
      }
      var count = document.querySelector('[data-zone-count="' + id + '"]');
      if (count) {
        count.textContent = String(zone.count);
      }
      paintZone(id, zone.intensity);
    });
  }

  function showRefusalCounts(counts) {
    var list = document.getElementById("live-refusal-counts");
    if (!list) {
      return;
    }
    while (list.firstChild) {
      list.removeChild(list.firstChild);
    }
    counts.forEach(function (entry) {
      var item = document.createElement("li");
      var badge = document.createElement("span");
      badge.className = "badge warn";
      badge.textContent = entry.label;
      item.appendChild(badge);
      item.appendChild(document.createTextNode(" " + entry.count));
      list.appendChild(item);
    });
  }

  function show(snapshot) {
    document.getElementById("live-in-store").textContent = String(snapshot.in_store);
    showZones(snapshot.zones);
    fillRows("live-members", "live-members-empty", snapshot.members, function (m) {
      return [[m.name, ""], [m.zone, ""], [m.since, ""]];
    });
    var more = document.getElementById("live-members-more");
    if (more) {
      var pattern = more.getAttribute("data-pattern");
      more.textContent = pattern.replace("{n}", String(snapshot.members_more));
      more.hidden = snapshot.members_more === 0;
    }
    fillRows("live-sent", "live-sent-empty", snapshot.notifications, function (n) {
      return [[n.when, ""], [n.kind, ""], [n.member, ""], [n.title, ""],
        [n.opened_label, n.opened ? "badge ok" : "badge"]];
    });
    fillRows("live-refused", "live-refused-empty", snapshot.refusals, function (r) {
      return [[r.when, ""], [r.member, ""], [r.kind + ": " + r.subject, ""],
        [r.outcome_label, "badge warn"], [r.reason, ""]];
    });
    showRefusalCounts(snapshot.refusal_counts);
  }

  // The server's first paint already carries each zone's intensity; colour the plan at once.
  Array.prototype.forEach.call(document.querySelectorAll("[data-zone-count]"), function (count) {
    paintZone(count.getAttribute("data-zone-count"), count.getAttribute("data-intensity"));
  });

  var source = new EventSource(root.getAttribute("data-stream-url"));
  source.addEventListener("snapshot", function (event) {
    show(JSON.parse(event.data));
  });
  source.addEventListener("open", function () {
    if (reconnectTimer) {
      clearTimeout(reconnectTimer);
      reconnectTimer = null;
    }
    statusLine.textContent = statusLine.getAttribute("data-live");
    if (refreshLink) {
      refreshLink.hidden = true;
    }
  });
  source.addEventListener("error", function () {
    if (reconnectTimer) {
      return;
    }
    reconnectTimer = setTimeout(function () {
      statusLine.textContent = statusLine.getAttribute("data-reconnecting");
      if (refreshLink) {
        refreshLink.hidden = false;
      }
    }, RECONNECT_GRACE_MS);
  });
})();
