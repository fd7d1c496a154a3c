// Small behaviours of every page; the site works without them.
(function () {
  "use strict";

  // A link to a help panel (<details>) opens it as well as scrolling to it.
  function openTarget(hash) {
    var target = hash && document.getElementById(hash.slice(1));
    if (target && target.tagName === "DETAILS") {
      target.open = true;
    }
  }

  document.addEventListener("click", function (event) {
    var link = event.target.closest && event.target.closest('a[href^="#"]');
    if (link) {
      openTarget(link.getAttribute("href"));
    }
  });
  window.addEventListener("hashchange", function () { openTarget(window.location.hash); });
  document.addEventListener("DOMContentLoaded", function () { openTarget(window.location.hash); });
})();
