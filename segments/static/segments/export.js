// The segment export form: when a purpose is chosen, tick the contact column its channel
// needs and show how many customers will be exported (from the count endpoint); with
// nobody to export, the download button is disabled and the page says why.
(function () {
  "use strict";
  var form = document.getElementById("export-form");
  var estimate = document.getElementById("export-estimate");
  if (!form || !estimate) return;
  var purpose = form.querySelector("select[name=purpose]");
  var submit = form.querySelector("input[type=submit]");
  var count = document.getElementById("export-count");
  var note = document.getElementById("export-contact-note");
  var contacts = JSON.parse(document.getElementById("export-contacts").textContent);
  var asked = 0;

  function show(data) {
    count.textContent = data.message || data.error || "";
    count.className = data.count ? "" : "errornote";
    note.textContent = data.contact_note || "";
    submit.disabled = !data.count;
  }

  function update(tick) {
    var code = purpose.value;
    if (!code) return;
    var column = contacts[code];
    if (column && tick) {
      var box = form.querySelector("input[name=columns][value=" + column + "]");
      if (box) box.checked = true;
    }
    var mine = ++asked;
    count.textContent = "…";
    fetch(estimate.dataset.url + "?purpose=" + encodeURIComponent(code), {credentials: "same-origin"})
      .then(function (response) { return response.json(); })
      .then(function (data) { if (mine === asked) show(data); });
  }

  purpose.addEventListener("change", function () { update(true); });
  if (purpose.value) update(false);  // a purpose already chosen: keep the columns as they are
})();
