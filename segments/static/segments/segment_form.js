// Segment forms: the slug follows the name (in pinyin, from the server) until staff type
// their own; and a segment still being calculated says so, with its progress, until the
// worker is done.
(function () {
  "use strict";

  function suggestSlugs() {
    document.querySelectorAll("input[data-slug-from][data-suggest-url]").forEach(function (slug) {
      const name = slug.form && slug.form.elements[slug.dataset.slugFrom];
      if (!name) return;
      let own = slug.value.trim() !== "";  // a slug already there, or typed, is left alone
      let timer = null;
      let asked = 0;
      slug.addEventListener("input", function () { own = slug.value.trim() !== ""; });
      name.addEventListener("input", function () {
        if (own) return;
        clearTimeout(timer);
        timer = setTimeout(function () {
          const request = ++asked;
          fetch(slug.dataset.suggestUrl + "?name=" + encodeURIComponent(name.value), { credentials: "same-origin" })
            .then(function (response) { return response.ok ? response.json() : null; })
            .then(function (answer) {
              if (answer && request === asked && !own) slug.value = answer.slug;
            })
            .catch(function () { /* saving makes one anyway */ });
        }, 250);
      });
    });
  }

  function followCalculation() {
    const box = document.getElementById("segment-calculating");
    if (!box || !box.dataset.statusUrl) return;
    const bar = box.querySelector("progress");
    const text = box.querySelector(".segment-calculating-text");
    function poll() {
      fetch(box.dataset.statusUrl, { credentials: "same-origin" })
        .then(function (response) { return response.ok ? response.json() : null; })
        .then(function (status) {
          if (!status) return setTimeout(poll, 5000);
          if (!status.calculating) { window.location.reload(); return; }
          if (bar && status.progress !== null) bar.value = status.progress;
          if (text) text.textContent = status.text;
          setTimeout(poll, 2000);
        })
        .catch(function () { setTimeout(poll, 5000); });
    }
    setTimeout(poll, 2000);
  }

  function start() { suggestSlugs(); followCalculation(); }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
