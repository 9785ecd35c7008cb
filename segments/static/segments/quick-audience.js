/* The quick audience box (templates/admin/segments/quick_audience.html, segments/quick/).
 *
 * Staff type one line ("上海+女性+喜欢运动鞋+高购买频率"); the server's parser answers with the
 * definition, what it did not understand (spans, highlighted here), ambiguous words (chips
 * to pick the meaning) and "did you mean" (chips that fix the line). Then, by page:
 *   builder  — the condition builder on the page loads the definition (its public load()),
 *              and its preview shows the count and sample; an empty name takes the line;
 *   list     — the count, "show these customers" (?audience=<definition>) and "save as a
 *              segment" (the builder with ?quick=<line>);
 *   campaign — the count and "create a segment from this line", chosen as the audience.
 */
(function () {
  "use strict";

  function el(tag, attrs, children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (value === undefined || value === null || value === false) continue;
      if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
      else if (name === "text") node.textContent = value;
      else node.setAttribute(name, value === true ? "" : value);
    }
    for (const child of [].concat(children || [])) {
      if (child !== null && child !== undefined && child !== false) node.append(child);
    }
    return node;
  }

  const fmt = (text, values) => text.replace(/\{(\w+)\}/g, (all, key) => (key in values ? values[key] : all));

  function csrfToken() {
    const input = document.querySelector("input[name=csrfmiddlewaretoken]");
    if (input) return input.value;
    const cookie = document.cookie.split("; ").find((c) => c.startsWith("csrftoken="));
    return cookie ? decodeURIComponent(cookie.split("=")[1]) : "";
  }

  class QuickAudience {
    constructor(root) {
      this.root = root;
      this.mode = root.dataset.mode;
      this.T = JSON.parse(document.getElementById(root.dataset.texts).textContent);
      this.input = root.querySelector(".qa-input");
      this.line = root.querySelector(".qa-line");
      this.notes = root.querySelector(".qa-notes");
      this.count = root.querySelector(".qa-count");
      this.actions = root.querySelector(".qa-actions");
      this.chosen = new Map();  // ambiguous word → the key of the meaning picked
      this.requests = 0;
      this.answer = null;
      this.input.addEventListener("input", () => this.schedule());
      this.input.addEventListener("keydown", (event) => {
        if (event.key === "Enter") { event.preventDefault(); this.schedule(0); }
      });
      if (this.mode === "campaign") this.moveIntoAudienceFieldset();
      const given = new URLSearchParams(window.location.search).get("quick");
      if (given) { this.input.value = given; this.schedule(0); }
    }

    // The campaign form: the box goes just above the segment choice.
    moveIntoAudienceFieldset() {
      const row = document.querySelector(".form-row.field-segment");
      if (row) row.parentNode.insertBefore(this.root, row);
      else this.root.hidden = true;  // a campaign whose audience is no longer edited
    }

    schedule(delay = 350) {
      clearTimeout(this.timer);
      this.timer = setTimeout(() => this.parse(), delay);
    }

    async parse() {
      const text = this.input.value;
      const request = ++this.requests;
      if (!text.trim()) { this.show(null); return; }
      const params = new URLSearchParams({ q: text });
      for (const key of this.chosen.values()) params.append("choose", key);
      let answer;
      try {
        const response = await fetch(`${this.root.dataset.parseUrl}?${params}`, { credentials: "same-origin" });
        if (!response.ok) throw new Error(response.statusText || String(response.status));
        answer = await response.json();
      } catch (error) {
        if (request === this.requests) this.notes.replaceChildren(el("p", { class: "errornote", text: fmt(this.T.failed, { s: error.message }) }));
        return;
      }
      if (request !== this.requests) return;  // the user typed on: a newer line is being read
      this.show(answer);
    }

    show(answer) {
      this.answer = answer;
      this.line.replaceChildren();
      this.notes.replaceChildren();
      this.actions.replaceChildren();
      this.count.replaceChildren();
      this.root.dataset.state = answer ? (answer.definition ? "understood" : "nothing") : "empty";
      if (!answer) return;
      this.highlight(answer);
      this.explain(answer);
      if (!answer.definition) {
        this.notes.prepend(el("p", { class: "qa-nothing", text: this.T.nothing }));
        return;
      }
      if (answer.errors.length) {
        this.notes.append(el("p", { class: "errornote", text: fmt(this.T.invalid, { s: answer.errors.map((e) => e.message).join(" ") }) }));
      }
      if (this.mode === "builder") this.fillBuilder(answer.definition);
      else this.preview(answer.definition);
      this.offer(answer);
    }

    /* The line as typed, each piece marked: understood, not understood, ambiguous. */
    highlight(answer) {
      const text = answer.query;
      const marks = new Array(text.length).fill(null);
      const mark = (items, kind) => items.forEach((item) => {
        for (let i = item.start; i < item.end; i++) marks[i] = { kind, item };
      });
      mark(answer.understood, "known");
      mark(answer.ambiguities, "ambiguous");
      mark(answer.unknown, "unknown");
      let start = 0;
      for (let i = 1; i <= text.length; i++) {
        if (i < text.length && marks[i] && marks[start] && marks[i].item === marks[start].item) continue;
        if (i < text.length && !marks[i] && !marks[start]) continue;
        const piece = text.slice(start, i);
        const found = marks[start];
        this.line.append(found
          ? el("span", { class: `qa-${found.kind}`, title: found.item.label || "", text: piece })
          : document.createTextNode(piece));
        start = i;
      }
    }

    explain(answer) {
      const T = this.T;
      if (answer.unknown.length) {
        this.notes.append(el("p", { class: "qa-unknown-list" }, [
          el("strong", { text: T.not_understood }), " ",
          ...answer.unknown.map((item) => el("span", { class: "qa-unknown", "data-start": item.start, text: item.text })),
        ]));
      }
      for (const suggestion of answer.suggestions) {
        this.notes.append(el("p", { class: "qa-suggestion" }, [
          `${T.did_you_mean} `,
          el("button", { type: "button", class: "qa-chip", "data-replacement": suggestion.replacement,
            onclick: () => this.replace(suggestion), text: suggestion.replacement }),
          "？",
        ]));
      }
      for (const item of answer.ambiguities) {
        this.notes.append(el("p", { class: "qa-ambiguity" }, [
          fmt(T.which_one, { s: item.text }), " ",
          ...item.choices.map((choice) => el("button", {
            type: "button", class: `qa-chip${choice.key === item.chosen ? " qa-chosen" : ""}`, "data-key": choice.key,
            "aria-pressed": String(choice.key === item.chosen), text: choice.label,
            onclick: () => { this.chosen.set(item.text, choice.key); this.schedule(0); },
          })),
        ]));
      }
      if (answer.understood.length) {
        this.notes.append(el("p", { class: "qa-understood-list" }, [
          el("strong", { text: T.understood }), " ", answer.understood.map((item) => item.label).join(" · "),
        ]));
      }
      if (answer.too_long) this.notes.append(el("p", { class: "help", text: T.too_long }));
    }

    replace(suggestion) {
      const value = this.input.value;
      this.input.value = value.slice(0, suggestion.start) + suggestion.replacement + value.slice(suggestion.end);
      this.schedule(0);
    }

    // --- by page

    /* The segment builder: its load() draws the definition and counts it. */
    fillBuilder(definition) {
      const builderRoot = document.querySelector(".condition-builder");
      if (!builderRoot || !builderRoot.builder) return;
      builderRoot.builder.load(definition);
      const name = builderRoot.closest("form") && builderRoot.closest("form").elements.name;
      if (name && (!name.value.trim() || name.dataset.fromQuick === name.value)) {
        name.value = this.input.value.trim().slice(0, 150);
        name.dataset.fromQuick = name.value;
        name.dispatchEvent(new Event("input", { bubbles: true }));  // the slug follows
      }
    }

    async preview(definition) {
      const T = this.T;
      const request = this.requests;
      this.count.replaceChildren(el("p", { class: "qa-status", text: T.counting }));
      let answer;
      try {
        const response = await fetch(this.root.dataset.previewUrl, {
          method: "POST", credentials: "same-origin",
          headers: { "Content-Type": "application/json", "X-CSRFToken": csrfToken() },
          body: JSON.stringify({ definition, sample_size: 0 }),
        });
        answer = await response.json();
      } catch (error) {
        answer = { errors: [{ message: error.message }] };
      }
      if (request !== this.requests) return;
      if (answer.errors && answer.errors.length) {
        this.count.replaceChildren(el("p", { class: "errornote", text: answer.errors.map((e) => e.message).join(" ") }));
      } else if (answer.count === null) {
        this.count.replaceChildren();
      } else {
        this.count.replaceChildren(el("p", { class: "qa-number", "data-count": answer.count,
          text: fmt(T.count, { n: answer.count.toLocaleString() }) }));
      }
    }

    offer(answer) {
      const T = this.T;
      const data = this.root.dataset;
      if (this.mode === "list") {
        const url = `${data.profilesUrl}?audience=${encodeURIComponent(JSON.stringify(answer.definition))}`;
        this.actions.append(el("a", { class: "button default qa-show", href: url, text: T.show_customers }));
        if (data.canCreate) {
          this.actions.append(" ", el("a", { class: "button qa-save",
            href: `${data.segmentAddUrl}?quick=${encodeURIComponent(this.input.value)}`, text: T.save_as_segment }));
        }
      }
      if (this.mode === "campaign" && data.canCreate) {
        this.actions.append(el("button", { type: "button", class: "button qa-create", text: T.create_segment,
          onclick: () => this.createSegment() }));
      }
    }

    async createSegment() {
      const body = new URLSearchParams({ q: this.input.value, choose: Array.from(this.chosen.values()).join(",") });
      let answer;
      try {
        const response = await fetch(this.root.dataset.createUrl, {
          method: "POST", credentials: "same-origin", headers: { "X-CSRFToken": csrfToken() }, body,
        });
        answer = await response.json();
      } catch (error) {
        answer = { errors: [error.message] };
      }
      if (answer.errors) {
        this.actions.append(el("p", { class: "errornote", text: answer.errors.join(" ") }));
        return;
      }
      const select = document.getElementById("id_segment");
      if (select) {
        select.append(new Option(answer.name, answer.id, true, true));
        select.dispatchEvent(new Event("change", { bubbles: true }));
        if (window.django && window.django.jQuery) window.django.jQuery(select).trigger("change");  // autocomplete
      }
      this.actions.replaceChildren(el("p", { class: "qa-created" }, [
        el("a", { href: answer.url, target: "_blank", text: fmt(this.T.created, { s: answer.name }) })]));
    }
  }

  function start() {
    document.querySelectorAll(".quick-audience").forEach((root) => {
      if (!root.quickAudience) root.quickAudience = new QuickAudience(root);
    });
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
