// Reloads an admin page that shows active refresh runs, unless the operator is busy on it.
"use strict";
(function () {
  function start() {
    const marker = document.querySelector("[data-refresh-autoreload]");
    if (!marker) {
      return;
    }
    const delay = (Number(marker.dataset.refreshAutoreload) || 3) * 1000;
    function busy() {
      const active = document.activeElement;
      const typing = active && ["INPUT", "SELECT", "TEXTAREA"].includes(active.tagName);
      return typing || document.querySelector("input.action-select:checked") !== null;
    }
    function tick() {
      if (busy()) {
        window.setTimeout(tick, delay);
      } else {
        window.location.reload();
      }
    }
    window.setTimeout(tick, delay);
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
