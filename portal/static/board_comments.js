// A board page shows its newest comments. A link to one (#c-123) saved earlier, from a
// notification say, may point at a comment newer ones have pushed to an earlier page: when the
// page has no such comment, ask the server for the page that holds it (?around=123). Once only:
// a comment that is gone, or not shown to this member, is not found there either.
(function () {
  "use strict";

  var match = /^#c-(\d+)$/.exec(window.location.hash);
  if (!match || document.getElementById("c-" + match[1])) {
    return;
  }
  var params = new URLSearchParams(window.location.search);
  if (params.get("around") === match[1]) {
    return;
  }
  params.delete("before");
  params.delete("after");
  params.set("around", match[1]);
  window.location.replace(window.location.pathname + "?" + params.toString() + match[0]);
})();
