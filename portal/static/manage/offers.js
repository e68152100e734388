// The offer form's live parts: the phone preview follows the fields, the audience expression is
// checked as it is typed, and only the chosen trigger's and benefit's own fields are shown.
// Without this file the form still works: the Preview button renders the card on the server.
// Text from the server goes in through textContent only, never innerHTML.
(function () {
  "use strict";

  // Wait this long after the last keystroke before asking the server: one request per pause,
  // not one per key.
  var PREVIEW_DELAY_MS = 500;
  var AUDIENCE_DELAY_MS = 350;

  var form = document.getElementById("offer-form");
  if (!form || !window.fetch || !window.FormData) {
    return;
  }
  var tokenTag = document.querySelector('meta[name="csrf-token"]');
  var csrfToken = tokenTag ? tokenTag.getAttribute("content") : "";

  function byId(id) {
    return document.getElementById(id);
  }

  function debounce(fn, delay) {
    var timer = null;
    return function () {
      if (timer) {
        clearTimeout(timer);
      }
      timer = setTimeout(fn, delay);
    };
  }

  function post(url, body, contentType) {
    var headers = { "X-CSRFToken": csrfToken, Accept: "application/json" };
    if (contentType) {
      headers["Content-Type"] = contentType;
    }
    return fetch(url, {
      method: "POST",
      headers: headers,
      body: body,
      credentials: "same-origin",
    }).then(function (response) {
      return response.json();
    });
  }

  // -- only the fields the chosen trigger and benefit use ---------------------------------
  function showOnly(prefix, chosen) {
    var nodes = form.querySelectorAll("[class*='" + prefix + "']");
    for (var i = 0; i < nodes.length; i++) {
      var classes = nodes[i].className.split(/\s+/);
      for (var j = 0; j < classes.length; j++) {
        if (classes[j].indexOf(prefix) === 0) {
          nodes[i].hidden = classes[j] !== prefix + chosen;
        }
      }
    }
  }

  var trigger = byId("trigger_kind");
  var benefit = byId("benefit_kind");
  function toggleFields() {
    if (trigger) {
      showOnly("trigger-", trigger.value);
    }
    if (benefit) {
      showOnly("benefit-", benefit.value);
    }
  }
  toggleFields();

  // -- the phone preview ---------------------------------------------------------------
  var status = byId("preview-status");

  function setText(id, text) {
    var node = byId(id);
    if (node) {
      node.textContent = text || "";
      node.hidden = !text;
    }
  }

  function showCard(card) {
    byId("preview-card").hidden = false;
    byId("preview-empty").hidden = true;
    byId("preview-title").textContent = card.title;
    setText("preview-body", card.body);
    byId("preview-price-line").hidden = !card.price;
    byId("preview-price").textContent = card.price || "";
    byId("preview-was").textContent = card.was || "";
    byId("preview-expires").textContent = card.expires;
    setText("preview-note", card.note);
    status.textContent = "";
  }

  var refreshPreview = debounce(function () {
    var data = new FormData(form);
    data.delete("action");
    post(form.dataset.previewUrl, data)
      .then(function (answer) {
        if (answer.ok) {
          showCard(answer.card);
        } else {
          status.textContent = (answer.errors || []).join(" ");
        }
      })
      .catch(function () {
        status.textContent = "";
      });
  }, PREVIEW_DELAY_MS);

  // -- the audience, checked as it is typed ----------------------------------------------
  var audience = byId("audience");
  var audienceCheck = byId("audience-check");
  var checkAudience = debounce(function () {
    post(
      form.dataset.audienceUrl,
      JSON.stringify({ audience: audience.value }),
      "application/json"
    )
      .then(function (answer) {
        audienceCheck.textContent = answer.message || "";
        audienceCheck.className = "audience-check " + (answer.ok ? "ok" : "bad");
      })
      .catch(function () {
        audienceCheck.textContent = "";
      });
  }, AUDIENCE_DELAY_MS);
  if (audience && audienceCheck) {
    audience.addEventListener("input", checkAudience);
  }

  form.addEventListener("input", refreshPreview);
  form.addEventListener("change", function (event) {
    if (event.target === trigger || event.target === benefit) {
      toggleFields();
    }
    refreshPreview();
  });
})();
