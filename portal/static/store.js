// The store page's live feed: new offers and friend notes appear on top as they are decided.
// A file, not inline script (the CSP forbids inline). Data goes into the page only through
// textContent and attributes, never innerHTML, so an offer's title can never become markup.
// The server renders the same markup for the notifications it already has (store.html).
(function () {
  "use strict";

  // EventSource ends a stream on purpose every few minutes and reconnects at once; only say
  // "reconnecting" when it has not come back within this long.
  var RECONNECT_GRACE_MS = 4000;
  // A notification counts as seen when this much of it is on screen.
  var SEEN_RATIO = 0.5;

  var list = document.getElementById("notifications");
  if (!list || !window.EventSource) {
    return;
  }
  var labels = list.dataset;
  var statusLine = document.getElementById("feed-status");
  var empty = document.getElementById("feed-empty");
  var tokenTag = document.querySelector('meta[name="csrf-token"]');
  var csrfToken = tokenTag ? tokenTag.getAttribute("content") : "";

  function fill(pattern, values) {
    // One pass with a replacement function: a "$&" or "{zone}" inside a name stays literal.
    return pattern.replace(/\{(\w+)\}/g, function (whole, key) {
      return Object.prototype.hasOwnProperty.call(values, key) ? String(values[key]) : whole;
    });
  }

  function element(tag, className, text) {
    var node = document.createElement(tag);
    if (className) {
      node.className = className;
    }
    if (text !== undefined) {
      node.textContent = text;
    }
    return node;
  }

  // The same format the server renders with Babel: the store's currency, the page's language.
  function money(cents) {
    try {
      return new Intl.NumberFormat(document.documentElement.lang || undefined, {
        style: "currency",
        currency: labels.currency
      }).format(cents / 100);
    } catch (error) {
      return (cents / 100).toFixed(2) + " " + labels.currency;
    }
  }

  function storeTime(iso) {
    try {
      return new Intl.DateTimeFormat(document.documentElement.lang || undefined, {
        dateStyle: "short",
        timeStyle: "short",
        timeZone: labels.timezone
      }).format(new Date(iso));
    } catch (error) {
      return iso;
    }
  }

  function offerParts(note, item) {
    item.appendChild(element("h3", "", note.title));
    if (note.body) {
      item.appendChild(element("p", "", note.body));
    }
    if (typeof note.price_cents === "number") {
      var price = element("p", "price", fill(labels.labelPrice, { price: money(note.price_cents) }));
      if (typeof note.base_price_cents === "number" && note.base_price_cents > note.price_cents) {
        price.appendChild(document.createTextNode(" "));
        price.appendChild(element("s", "", fill(labels.labelWas, { price: money(note.base_price_cents) })));
      }
      item.appendChild(price);
    }
    if (note.code) {
      var figure = element("figure", "code");
      var image = element("img", "qr");
      image.src = labels.codeUrl.replace("CODE", encodeURIComponent(note.code));
      image.alt = fill(labels.labelQr, { code: note.code });
      image.width = 150;
      image.height = 150;
      figure.appendChild(image);
      var caption = element("figcaption", "", labels.labelCode + " ");
      caption.appendChild(element("code", "", note.code));
      figure.appendChild(caption);
      item.appendChild(figure);
    }
    if (note.expires_at) {
      item.appendChild(element("p", "expires", fill(labels.labelExpires, { time: storeTime(note.expires_at) })));
    }
  }

  // A staff answer in the member's support thread: its start, and a link to the conversation.
  function supportParts(note, item) {
    item.appendChild(element("h3", "", note.title));
    if (note.body) {
      item.appendChild(element("p", "support-text", note.body));
    }
    if (typeof note.thread_id === "number") {
      var paragraph = element("p");
      var link = element("a", "", labels.labelSupportLink);
      link.href = labels.supportUrl.replace(/\/0$/, "/" + note.thread_id);
      paragraph.appendChild(link);
      item.appendChild(paragraph);
    }
  }

  // Community news (a friend request, a comment, a reply, an answer): what, and a link to it.
  function communityParts(note, item) {
    item.appendChild(element("h3", "", note.title));
    if (note.body) {
      item.appendChild(element("p", "community-text", note.body));
    }
    // Only a path on this site: the server writes nothing else, and this keeps it so.
    if (typeof note.link === "string" && /^\/(?![\/\\])/.test(note.link)) {
      var paragraph = element("p");
      var link = element("a", "", labels.labelOpen);
      link.href = note.link;
      paragraph.appendChild(link);
      item.appendChild(paragraph);
    }
  }

  function friendText(note) {
    if (note.friend_name && note.zone) {
      return fill(labels.labelFriend, { name: note.friend_name, zone: note.zone });
    }
    return note.body ? note.title + " — " + note.body : note.title;
  }

  function render(note) {
    var known = ["offer", "support", "community"];
    var kind = known.indexOf(note.kind) >= 0 ? note.kind : "friend";
    var item = element("li", "note " + kind + " new");
    item.id = "n-" + note.id;
    item.dataset.id = String(note.id);
    item.dataset.opened = note.opened ? "true" : "false";
    if (note.kind === "offer") {
      offerParts(note, item);
    } else if (note.kind === "support") {
      supportParts(note, item);
    } else if (note.kind === "community") {
      communityParts(note, item);
    } else {
      item.appendChild(element("p", "friend-text", friendText(note)));
    }
    return item;
  }

  // Opens: the first time a notification is on screen while the page is visible, or tapped.
  var onScreen = new Set();

  function markOpened(item) {
    if (item.dataset.opened !== "false") {
      return;
    }
    item.dataset.opened = "sending";
    fetch(labels.openedUrl.replace("/0/", "/" + item.dataset.id + "/"), {
      method: "POST",
      credentials: "same-origin",
      headers: { "X-CSRFToken": csrfToken }
    }).then(function (response) {
      item.dataset.opened = response.ok ? "true" : "false";
    }, function () {
      item.dataset.opened = "false";
    });
  }

  function markVisible() {
    if (document.visibilityState === "visible") {
      onScreen.forEach(markOpened);
    }
  }

  var observer = window.IntersectionObserver ? new IntersectionObserver(function (entries) {
    entries.forEach(function (entry) {
      if (entry.isIntersecting) {
        onScreen.add(entry.target);
      } else {
        onScreen.delete(entry.target);
      }
    });
    markVisible();
  }, { threshold: SEEN_RATIO }) : null;

  function watch(item) {
    if (observer && item.dataset.opened === "false") {
      observer.observe(item);
    }
  }

  Array.prototype.forEach.call(list.children, watch);
  document.addEventListener("visibilitychange", markVisible);
  list.addEventListener("click", function (event) {
    var item = event.target.closest ? event.target.closest("li.note") : null;
    if (item) {
      markOpened(item);
    }
  });

  // The connection, and what the shopper is told about it.
  var graceTimer = null;

  function showStatus(text, state) {
    statusLine.textContent = text;
    statusLine.dataset.state = state;
    statusLine.hidden = false;
  }

  var source = new EventSource(labels.feedUrl);
  source.addEventListener("open", function () {
    clearTimeout(graceTimer);
    graceTimer = null;
    showStatus(labels.statusLive, "live");
  });
  source.addEventListener("error", function () {
    if (source.readyState === EventSource.CLOSED) {
      clearTimeout(graceTimer);
      showStatus(labels.statusClosed, "closed");
    } else if (graceTimer === null) {
      graceTimer = setTimeout(function () {
        showStatus(labels.statusReconnecting, "reconnecting");
      }, RECONNECT_GRACE_MS);
    }
  });
  source.addEventListener("notification", function (event) {
    var note = JSON.parse(event.data);
    if (document.getElementById("n-" + note.id)) {
      return; // already on the page (rendered by the server, or sent again after a reconnect)
    }
    var item = render(note);
    list.insertBefore(item, list.firstChild);
    if (empty) {
      empty.hidden = true;
    }
    watch(item);
  });
})();
