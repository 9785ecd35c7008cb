// The profile's audited reveal, one customer at a time, on pages that list customers:
// a button.reveal-pii (data-url: the reveal endpoint) beside a .member-phone cell; the
// full phone replaces the masked one. The page's <script> tag carries the CSRF field's
// presence and the refusal text (data-refused).
(function () {
  "use strict";
  const script = document.currentScript;
  const refused = script.dataset.refused;
  document.addEventListener("DOMContentLoaded", () => {
    const csrf = document.querySelector("[name=csrfmiddlewaretoken]");
    document.querySelectorAll(".reveal-pii").forEach((button) => button.addEventListener("click", async () => {
      const response = await fetch(button.dataset.url, {method: "POST", headers: {"X-CSRFToken": csrf.value}});
      if (!response.ok) { button.textContent = refused; button.disabled = true; return; }
      const data = await response.json();
      button.parentElement.querySelector(".member-phone").textContent = data.phone || "—";
      button.remove();
    }));
  });
})();
