/* The campaign page: audience and schedule fields that apply, a live preview (with the SMS
   length counter) under each variant as it is typed, progress refreshed while sending,
   and a confirmation before cancelling. */
(function () {
  "use strict";
  const editorData = document.getElementById("campaign-editor");
  const editor = editorData ? JSON.parse(editorData.textContent) : null;
  const csrf = () => (document.querySelector("[name=csrfmiddlewaretoken]") || {}).value || "";

  function row(name) {
    return document.querySelector(".form-row.field-" + name + ", .fieldBox.field-" + name);
  }

  function showWhen(select, rules) {
    if (!select) { return; }
    const apply = () => Object.entries(rules).forEach(([name, values]) => {
      const element = row(name);
      if (element) { element.hidden = !values.includes(select.value); }
    });
    select.addEventListener("change", apply);
    apply();
  }

  showWhen(document.getElementById("id_audience_kind"), {
    segment: ["segment", "trigger_segment"],
    trigger_event: ["trigger_event"], trigger_where: ["trigger_event"], trigger_unless_event: ["trigger_event"],
    trigger_within_minutes: ["trigger_event"], delay_minutes: ["trigger_segment", "trigger_event"],
    trigger_once_per_days: ["trigger_segment", "trigger_event"],
  });
  showWhen(document.getElementById("id_schedule"), {scheduled_at: ["at", "daily", "weekly"]});

  // Live preview under each variant's message.
  function attachPreview(body) {
    if (!editor || body.dataset.previewAttached) { return; }
    body.dataset.previewAttached = "1";
    const prefix = body.id.replace(/^id_/, "").replace(/body$/, "");
    const field = (name) => document.getElementById("id_" + prefix + name);
    const box = document.createElement("div");
    box.className = "campaign-live-preview";
    box.setAttribute("aria-live", "polite");
    body.closest(".form-row").after(box);
    let timer = null;
    const refresh = async () => {
      const data = new FormData();
      if (editor.campaign) { data.append("campaign", editor.campaign); }
      const purpose = document.getElementById("id_purpose");
      if (purpose) { data.append("purpose", purpose.value); }
      const segment = document.getElementById("id_segment");
      if (segment) { data.append("segment", segment.value); }
      ["subject", "body", "sms_sign_name", "link_url"].forEach((name) => {
        const input = field(name);
        data.append(name, input ? input.value : "");
      });
      const response = await fetch(editor.preview_url, {method: "POST", body: data, headers: {"X-CSRFToken": csrf()}});
      if (!response.ok) { return; }
      const answer = await response.json();
      box.replaceChildren();
      const add = (tag, className, text) => {
        const element = document.createElement(tag);
        element.className = className;
        element.textContent = text;
        box.append(element);
        return element;
      };
      if (answer.error) { add("p", "errornote", answer.error); return; }
      add("p", "muted", answer.customer);
      if (answer.subject) { add("p", "preview-subject", answer.subject); }
      add("div", "preview-text", answer.text);
      if (answer.sms) { add("p", "help sms-counter" + (answer.parts > 1 ? " sms-long" : ""), answer.counter); }
    };
    const later = () => { clearTimeout(timer); timer = setTimeout(refresh, 300); };
    ["subject", "body", "sms_sign_name", "link_url"].forEach((name) => {
      const input = field(name);
      if (input) { input.addEventListener("input", later); }
    });
    ["id_purpose", "id_segment"].forEach((id) => {
      const select = document.getElementById(id);
      // the segment is a select2 widget: its changes come through jQuery
      if (select && window.django && window.django.jQuery) { window.django.jQuery(select).on("change", later); }
      else if (select) { select.addEventListener("change", later); }
    });
    refresh();
  }
  const attachAll = () => document.querySelectorAll("textarea.variant-body").forEach((body) => {
    if (!body.id.includes("__prefix__")) { attachPreview(body); }
  });
  attachAll();
  document.addEventListener("formset:added", attachAll);

  // Cancelling asks first.
  document.querySelectorAll("form[data-confirm]").forEach((form) => form.addEventListener("submit", (event) => {
    if (!window.confirm(form.dataset.confirm)) { event.preventDefault(); }
  }));

  // Progress, refreshed while the campaign is live.
  const page = document.getElementById("campaign-page");
  if (page && page.dataset.progressUrl) {
    const poll = async () => {
      const response = await fetch(page.dataset.progressUrl, {headers: {"Accept": "application/json"}});
      if (!response.ok) { return; }
      const answer = await response.json();
      if (answer.status !== page.dataset.status) { window.location.reload(); return; }
      Object.entries(answer.counts).forEach(([status, count]) => {
        const cell = document.querySelector(`[data-status-count="${status}"]`);
        if (cell) { cell.textContent = count; }
      });
      const bar = document.getElementById("progress-bar");
      if (bar) { bar.value = answer.percent; }
      const text = document.getElementById("progress-text");
      if (text) { text.textContent = `${answer.done} / ${answer.to_send}`; }
      Object.entries(answer.results || {}).forEach(([name, count]) => {
        const cell = document.querySelector(`#result-total [data-result="${name}"]`);
        if (cell) { cell.textContent = count; }
      });
      if (answer.live) { setTimeout(poll, 3000); }
    };
    setTimeout(poll, 3000);
  }
})();
