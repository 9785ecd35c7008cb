/* The visual condition builder (segments.builder.ConditionBuilderWidget).
 *
 * The builder is a view over the definition JSON that edits it in place: every node on
 * screen is the very object that gets saved, so a definition loads and saves unchanged,
 * keys the builder does not draw included. The textarea under it is what the form
 * submits and what "edit as JSON" shows.
 *
 * Each kind of condition is one entry in KINDS: how to recognise its JSON (`matches`),
 * a new one (`create`), and how to draw it (`render`). Adding a kind is adding an entry.
 */
(function () {
  "use strict";

  // --- small helpers ----------------------------------------------------------------

  function el(tag, attrs, children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (value === undefined || value === null || value === false) continue;
      if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
      else if (name === "text") node.textContent = value;
      else node.setAttribute(name, value === true ? "" : value);
    }
    for (const child of [].concat(children || []).flat(Infinity)) {
      if (child !== null && child !== undefined && child !== false) node.append(child);
    }
    return node;
  }

  function fmt(text, values) {
    return text.replace(/\{(\w+)\}/g, (all, key) => (key in values ? values[key] : all));
  }

  const isObject = (value) => value !== null && typeof value === "object" && !Array.isArray(value);
  const isEmpty = (node) => isObject(node) && Object.keys(node).length === 0;
  const same = (a, b) => JSON.stringify(a) === JSON.stringify(b);
  const PLAIN_DATE = /^\d{4}-\d{2}-\d{2}$/;

  function csrfToken(form) {
    const input = form && form.querySelector("input[name=csrfmiddlewaretoken]");
    if (input) return input.value;
    const cookie = document.cookie.split("; ").find((c) => c.startsWith("csrftoken="));
    return cookie ? decodeURIComponent(cookie.split("=")[1]) : "";
  }

  // --- inputs -----------------------------------------------------------------------

  /* A searchable list: a button showing the choice; clicking it opens a search box over
   * the items ({value, label, group, active}). Values not in the list show as they are. */
  function picker(builder, items, current, onPick, key) {
    const T = builder.text;
    const known = items.find((item) => same(item.value, current));
    const caption = known ? known.label : current === undefined || current === "" ? T.pick : String(current);
    const button = el("button", { type: "button", class: "cb-picker-button", "data-key": key, text: caption });
    const search = el("input", { type: "search", placeholder: T.search, "aria-label": T.search });
    const list = el("ul", { role: "listbox" });
    const panel = el("div", { class: "cb-picker-panel", hidden: true }, [search, list]);
    const wrap = el("span", { class: "cb-picker" }, [button, panel]);
    let matches = [];

    function fill() {
      const query = search.value.trim().toLowerCase();
      matches = items.filter((item) =>
        !query || [item.label, String(item.value), item.group || ""].some((t) => t.toLowerCase().includes(query)));
      list.replaceChildren(...matches.slice(0, 200).map((item) => el("li", {
        role: "option", class: item.active === false ? "cb-retired" : null, "data-value": String(item.value),
        onmousedown: (event) => { event.preventDefault(); choose(item); },
      }, [item.label, item.active === false ? ` (${T.retired})` : "", item.group ? el("small", { text: item.group }) : null])));
      if (!matches.length) list.append(el("li", { class: "cb-none", text: T.no_match }));
    }
    function choose(item) { close(); onPick(item.value); }
    function close() { panel.hidden = true; document.removeEventListener("mousedown", outside); }
    function outside(event) { if (!wrap.contains(event.target)) close(); }
    button.addEventListener("click", () => {
      if (!panel.hidden) return close();
      panel.hidden = false;
      search.value = "";
      fill();
      search.focus();
      document.addEventListener("mousedown", outside);
    });
    search.addEventListener("input", fill);
    search.addEventListener("keydown", (event) => {
      if (event.key === "Enter") { event.preventDefault(); if (matches.length) choose(matches[0]); }
      if (event.key === "Escape") close();
    });
    return wrap;
  }

  function select(choices, current, onChange, key) {
    // choices: [[value, label]]; values may be any JSON, so options carry their index.
    const options = choices.slice();
    if (!options.some(([value]) => same(value, current))) {
      options.unshift([current, current === undefined ? "" : String(current)]);
    }
    const node = el("select", { "data-key": key, onchange: () => onChange(options[node.selectedIndex][0]) },
      options.map(([value, label]) => el("option", {
        value: typeof value === "string" ? value : JSON.stringify(value), text: label, selected: same(value, current),
      })));
    return node;
  }

  function numberValue(text) {
    const number = Number(text);
    return text.trim() !== "" && Number.isFinite(number) ? number : text;
  }

  /* One value of a type: text, number, date, datetime or choice ({value, label}). */
  function scalarInput(builder, type, choices, current, onChange, key) {
    if (type === "choice") {
      const list = choices.map((choice) => [choice.value, choice.label]);
      if (current === undefined || current === "") list.unshift(["", builder.text.pick]);
      return select(list, current, onChange, key);
    }
    // A date picker unless the value carries a time, which a date picker would lose.
    const blank = current === "" || current === undefined;
    const asDate = (type === "date" || type === "datetime") && (blank || PLAIN_DATE.test(current));
    const input = el("input", {
      type: type === "number" ? "number" : asDate ? "date" : "text", step: type === "number" ? "any" : null,
      class: type === "number" ? "cb-number" : null, "data-key": key, value: current === undefined ? "" : String(current),
    });
    input.addEventListener("input", () => onChange(type === "number" ? numberValue(input.value) : input.value));
    return input;
  }

  /* A list of values: checkboxes for choices, otherwise chips typed in one by one. */
  function listInput(builder, type, choices, current, onChange, key) {
    const values = Array.isArray(current) ? current.slice() : [];
    if (type === "choice") {
      const others = values.filter((v) => !choices.some((c) => same(c.value, v)));
      const all = choices.concat(others.map((v) => ({ value: v, label: String(v) })));
      return el("span", { class: "cb-checks", "data-key": key }, all.map((choice) => {
        const box = el("input", { type: "checkbox", checked: values.some((v) => same(v, choice.value)) });
        box.addEventListener("change", () => {
          const kept = values.filter((v) => !same(v, choice.value));
          if (box.checked) kept.push(choice.value);
          values.splice(0, values.length, ...all.map((c) => c.value).filter((v) => kept.some((k) => same(k, v))));
          onChange(values.slice());
        });
        return el("label", {}, [box, " ", choice.label]);
      }));
    }
    const chips = el("span", { class: "cb-chips", "data-key": key });
    const typed = el("input", { type: type === "number" ? "number" : "text", placeholder: builder.text.add_value, size: 18 });
    function draw() {
      chips.replaceChildren(...values.map((value, i) => el("span", { class: "cb-chip" }, [
        String(value),
        el("button", { type: "button", title: builder.text.remove, text: "×",
          onclick: () => { values.splice(i, 1); onChange(values.slice()); draw(); } }),
      ])), typed);
    }
    typed.addEventListener("keydown", (event) => {
      if (event.key !== "Enter" || !typed.value.trim()) return;
      event.preventDefault();
      values.push(type === "number" ? numberValue(typed.value) : typed.value.trim());
      typed.value = "";
      onChange(values.slice());
      draw();
      typed.focus();
    });
    draw();
    return chips;
  }

  function daysInput(current, onChange, key, text) {
    const input = el("input", { type: "number", min: 0, step: 1, class: "cb-number", "data-key": key, value: current ?? "" });
    input.addEventListener("input", () => {
      const number = Number(input.value);
      onChange(input.value !== "" && Number.isInteger(number) ? number : input.value);
    });
    return el("span", {}, [input, " ", text.days]);
  }

  function removeButton(builder, ctx) {
    return el("button", { type: "button", class: "cb-remove", title: builder.text.remove, "aria-label": builder.text.remove,
      text: "×", onclick: () => { ctx.remove(); builder.refresh(); } });
  }

  // --- kinds ------------------------------------------------------------------------

  const FIELD_SHAPES = {
    is_set: "none", is_empty: "none", between: "pair", in: "list", not_in: "list",
    within_last_days: "days", more_than_days_ago: "days", anniversary_within_days: "days",
  };
  const shapeOf = (op) => FIELD_SHAPES[op] || "one";
  const EMPTY_VALUE = { one: "", pair: ["", ""], list: [], days: 30 };

  const fieldKind = {
    name: "field",
    matches: (node) => "field" in node,
    create: () => ({ field: "", op: "eq", value: "" }),
    render(node, ctx, builder) {
      const spec = builder.fields.get(node.field);
      const fieldItems = builder.options.fields.map((f) => ({ value: f.name, label: f.label, group: f.group }));
      const fieldPicker = picker(builder, fieldItems, node.field, (name) => {
        const next = builder.fields.get(name);
        const keep = spec && next && spec.type === next.type && same(spec.choices, next.choices) && next.operators.includes(node.op);
        node.field = name;
        if (!keep) {
          node.op = next.operators[0];
          setFieldValue(node, shapeOf(node.op));
        }
        builder.refresh();
      }, "field");
      const operators = spec ? spec.operators : [node.op];
      const opSelect = select(operators.map((op) => [op, builder.options.operators.field[op] || op]), node.op, (op) => {
        const reshape = shapeOf(op) !== shapeOf(node.op);
        node.op = op;
        if (reshape) setFieldValue(node, shapeOf(op));
        builder.refresh();
      }, "op");
      return [fieldPicker, opSelect, fieldValueInput(builder, node, spec)];
    },
  };

  function setFieldValue(node, shape) {
    if (shape === "none") delete node.value;
    else node.value = JSON.parse(JSON.stringify(EMPTY_VALUE[shape]));
  }

  function fieldValueInput(builder, node, spec) {
    const type = spec ? spec.type : "text";
    const choices = spec ? spec.choices : [];
    const set = (value) => { node.value = value; builder.changed(); };
    switch (shapeOf(node.op)) {
      case "none": return null;
      case "days": return daysInput(node.value, set, "value", builder.text);
      case "list": return listInput(builder, type, choices, node.value, set, "value");
      case "pair": {
        const pair = Array.isArray(node.value) ? node.value : ["", ""];
        const part = (i) => scalarInput(builder, type, choices, pair[i], (value) => {
          node.value = Array.isArray(node.value) ? node.value : ["", ""];
          node.value[i] = value;
          builder.changed();
        }, "value");
        return el("span", {}, [part(0), ` ${builder.text.and} `, part(1)]);
      }
      default: return scalarInput(builder, type, choices, node.value, set, "value");
    }
  }

  const TAG_OPS = ["has", "has_not", "weight_gte", "has_any", "has_all", "in_category"];

  const tagKind = {
    name: "tag",
    matches: (node) => "tag" in node || "tags" in node || "tag_category" in node,
    create: () => ({ tag: "", op: "has" }),
    render(node, ctx, builder) {
      const T = builder.text;
      const current = "tag_category" in node ? "in_category" : node.op;
      const opSelect = select(TAG_OPS.map((op) => [op, T["tag_" + op]]), current, (op) => {
        const slugs = "tags" in node ? node.tags : node.tag ? [node.tag] : [];
        if (op === "in_category") ctx.set({ tag_category: "", op: "has_any" });
        else if (op === "has_any" || op === "has_all") ctx.set({ tags: slugs, op });
        else ctx.set(Object.assign({ tag: slugs[0] || "", op }, op === "weight_gte" ? { value: 0.5 } : {}));
        builder.refresh();
      }, "op");
      const tags = builder.options.tags;
      if (current === "in_category") {
        return [opSelect, picker(builder, builder.options.categories, node.tag_category,
          (value) => { node.tag_category = value; builder.refresh(); }, "tag_category")];
      }
      if ("tags" in node) {
        const chosen = Array.isArray(node.tags) ? node.tags : [];
        const chips = chosen.map((slug, i) => el("span", { class: "cb-chip" }, [
          (tags.find((t) => t.value === slug) || { label: slug }).label,
          el("button", { type: "button", text: "×", title: T.remove,
            onclick: () => { chosen.splice(i, 1); builder.refresh(); } }),
        ]));
        const add = picker(builder, tags.filter((t) => !chosen.includes(t.value)), "",
          (slug) => { node.tags = chosen.concat([slug]); builder.refresh(); }, "tag");
        return [opSelect, el("span", { class: "cb-chips" }, chips.concat([add]))];
      }
      const tagPicker = picker(builder, tags, node.tag, (slug) => { node.tag = slug; builder.refresh(); }, "tag");
      const weight = node.op === "weight_gte" ? el("span", {}, [" ≥ ", scalarInput(builder, "number", [], node.value,
        (value) => { node.value = value; builder.changed(); }, "value")]) : null;
      return [opSelect, tagPicker, weight];
    },
  };

  const MEASURES = [
    ["count", "measure_count"], ["first_within_days", "measure_first"], ["last_more_than_days_ago", "measure_last"],
    ["sum", "measure_sum"], ["avg", "measure_avg"], ["min", "measure_min"], ["max", "measure_max"],
    ["distinct", "measure_distinct"], ["share", "measure_share"],
  ];
  const measureOf = (node) => (MEASURES.find(([key]) => key in node) || ["count"])[0];

  const eventKind = {
    name: "event",
    matches: (node) => "event" in node,
    create: () => ({ event: "", count: { op: "gte", value: 1 } }),
    render(node, ctx, builder) {
      return eventEditor(builder, node, { measured: true, windowed: true });
    },
  };

  /* An event with its property filters and amount; `measured` adds how it is counted
   * (not in sequence steps), `windowed` the time window. */
  function eventEditor(builder, node, { measured, windowed }) {
    const T = builder.text;
    const definition = builder.events.get(node.event);
    const eventPicker = picker(builder, builder.options.events, node.event,
      (name) => { node.event = name; builder.refresh(); }, "event");
    const head = el("div", { class: "cb-row" }, [eventPicker]);
    const measure = measureOf(node);
    if (measured) {
      head.append(select(MEASURES.map(([key, label]) => [key, T[label]]), measure, (key) => {
        MEASURES.forEach(([name]) => delete node[name]);
        if (key === "count") node.count = { op: "gte", value: 1 };
        else if (key === "distinct") {
          const first = definition && definition.properties.length ? definition.properties[0].name : "";
          node.distinct = { of: first, op: "gte", value: 2 };
        } else if (key === "share") {
          node.share = { op: "gte", value: 0.5 };
          if (!("time_of_day" in node) && !("days_of_week" in node)) node.time_of_day = { from: "20:00", to: "00:00" };
        } else if (["sum", "avg", "min", "max"].includes(key)) node[key] = { op: "gte", value: "" };
        else { node[key] = 30; delete node.within; }
        builder.refresh();
      }, "measure"));
      if (measure === "first_within_days" || measure === "last_more_than_days_ago") {
        head.append(daysInput(node[measure], (value) => { node[measure] = value; builder.changed(); }, measure, T));
      } else {
        const compared = node[measure] || { op: "gte", value: 1 };
        const update = (change) => { node[measure] = Object.assign({}, compared, node[measure], change); builder.changed(); };
        const counted = measure === "count" || measure === "distinct";
        const operators = builder.options.operators[counted ? "count" : "amount"];
        if (measure !== "count" && measure !== "share") {
          // of what: the amount (sums …) or an event property (numbers for sums, any for distinct values)
          const properties = definition ? definition.properties.filter((p) => measure === "distinct" || p.type === "number") : [];
          const ofChoices = (measure === "distinct" ? [] : [["", T.amount]]).concat(properties.map((p) => [p.name, p.label]));
          head.append(" " + T.measure_of + " ", select(ofChoices, compared.of || "", (of) => {
            const next = Object.assign({}, compared, node[measure]);
            if (of) next.of = of; else delete next.of;
            node[measure] = next;
            builder.changed();
          }, `${measure}.of`), " ");
        }
        head.append(select(Object.entries(operators), compared.op, (op) => {
          // "between" counts take [from, to]; the other comparisons one number
          const value = op === "between" ? (Array.isArray(compared.value) ? compared.value : [compared.value, ""])
            : (Array.isArray(compared.value) ? compared.value[0] : compared.value);
          update({ op, value }); builder.refresh();
        }, measure));
        if (compared.op === "between") {
          const range = Array.isArray(compared.value) ? compared.value.slice() : ["", ""];
          [0, 1].forEach((i) => {
            if (i) head.append(" – ");
            head.append(scalarInput(builder, "number", [], range[i], (value) => { range[i] = value; update({ value: range.slice() }); }, measure));
          });
        } else {
          head.append(scalarInput(builder, "number", [], compared.value, (value) => update({ value }), measure));
        }
        if (measure === "count") head.append(" " + T.times);
      }
    }
    const rows = [head];
    if (windowed && !(measure === "first_within_days" || measure === "last_more_than_days_ago")) {
      rows.push(windowEditor(builder, node));
    }
    const properties = definition ? definition.properties : [];
    (Array.isArray(node.where) ? node.where : []).forEach((item, i) => {
      rows.push(propertyFilter(builder, node, item, i, properties));
    });
    if (isObject(node.amount)) {
      const amount = node.amount;
      rows.push(el("div", { class: "cb-row", "data-key": "amount" }, [
        T.amount + " ",
        select(Object.entries(builder.options.operators.amount), amount.op, (op) => { amount.op = op; builder.changed(); }, "amount"),
        scalarInput(builder, "number", [], amount.value, (value) => { amount.value = value; builder.changed(); }, "amount"),
        el("button", { type: "button", class: "cb-remove", text: "×", title: T.remove,
          onclick: () => { delete node.amount; builder.refresh(); } }),
      ]));
    }
    if (isObject(node.time_of_day)) {
      const span = node.time_of_day;
      const time = (key) => {
        const input = el("input", { type: "time", "data-key": `time_of_day.${key}`, value: span[key] === "24:00" ? "00:00" : span[key] || "" });
        input.addEventListener("input", () => { span[key] = input.value; builder.changed(); });
        return input;
      };
      rows.push(el("div", { class: "cb-row", "data-key": "time_of_day" }, [
        T.time_of_day + " ", time("from"), " – ", time("to"),
        el("button", { type: "button", class: "cb-remove", text: "×", title: T.remove,
          onclick: () => { delete node.time_of_day; builder.refresh(); } }),
      ]));
    }
    if (Array.isArray(node.days_of_week)) {
      rows.push(el("div", { class: "cb-row", "data-key": "days_of_week" }, [
        T.days_of_week + " ",
        el("span", { class: "cb-checks" }, [1, 2, 3, 4, 5, 6, 7].map((day) => {
          const box = el("input", { type: "checkbox", value: String(day), checked: node.days_of_week.includes(day) });
          box.addEventListener("change", () => {
            const days = node.days_of_week.filter((d) => d !== day);
            node.days_of_week = box.checked ? days.concat([day]).sort() : days;
            builder.changed();
          });
          return el("label", {}, [box, " " + T["weekday_" + day]]);
        })),
        el("button", { type: "button", class: "cb-remove", text: "×", title: T.remove,
          onclick: () => { delete node.days_of_week; builder.refresh(); } }),
      ]));
    }
    const adders = el("div", { class: "cb-row cb-adders" }, [
      !("time_of_day" in node) ? el("button", { type: "button", class: "cb-link", "data-add": "time_of_day",
        text: T.add_time_of_day, onclick: () => { node.time_of_day = { from: "20:00", to: "00:00" }; builder.refresh(); } }) : null,
      !("days_of_week" in node) ? el("button", { type: "button", class: "cb-link", "data-add": "days_of_week",
        text: T.add_days_of_week, onclick: () => { node.days_of_week = [6, 7]; builder.refresh(); } }) : null,
      el("button", { type: "button", class: "cb-link", "data-add": "where", text: T.add_where, onclick: () => {
        const property = properties.length ? properties[0].name : "";
        const item = { property, op: "eq", value: "" };
        builder.fresh.set(item, JSON.stringify(item));  // no error until a value is chosen
        node.where = (Array.isArray(node.where) ? node.where : []).concat([item]);
        builder.refresh();
      } }),
      definition && definition.has_amount && !("amount" in node) ? el("button", {
        type: "button", class: "cb-link", "data-add": "amount", text: T.add_amount,
        onclick: () => { node.amount = { op: "gte", value: "" }; builder.refresh(); },
      }) : null,
    ]);
    rows.push(adders);
    return [el("div", { class: "cb-event" }, rows)];
  }

  const WINDOW_UNITS = ["minutes", "hours", "days", "weeks", "months"];
  const PERIODS = ["today", "yesterday", "this_week", "last_week", "this_month", "last_month", "this_year"];

  /* When an event happened: at any time, in the last N minutes … months (rolling), in a
   * calendar period (today, this month …, at midnight in the display time zone), or between dates. */
  function windowEditor(builder, node) {
    const T = builder.text;
    const within = node.within;
    const unit = isObject(within) ? WINDOW_UNITS.find((u) => u in within) : undefined;
    const mode = within === undefined ? "any" : unit ? "rolling" : isObject(within) && "period" in within ? "period" : "between";
    const row = el("div", { class: "cb-row", "data-key": "within" }, [select(
      [["any", T.window_any], ["rolling", T.window_rolling], ["period", T.window_period], ["between", T.window_between]],
      mode, (next) => {
        if (next === "any") delete node.within;
        else node.within = next === "rolling" ? { days: 30 } : next === "period" ? { period: "this_month" } : { between: ["", ""] };
        builder.refresh();
      }, "within")]);
    if (mode === "rolling") {
      const amount = el("input", { type: "number", min: 1, step: 1, class: "cb-number", "data-key": "within", value: within[unit] ?? "" });
      amount.addEventListener("input", () => {
        const number = Number(amount.value);
        within[unit] = amount.value !== "" && Number.isInteger(number) ? number : amount.value;
        builder.changed();
      });
      row.append(amount, " ", select(WINDOW_UNITS.map((u) => [u, T["unit_" + u]]), unit, (next) => {
        node.within = { [next]: within[unit] };
        builder.refresh();
      }, "within_unit"));
    } else if (mode === "period") {
      row.append(select(PERIODS.map((p) => [p, T["period_" + p]]), within.period, (period) => {
        within.period = period; builder.changed();
      }, "within_period"));
    } else if (mode === "between") {
      const range = Array.isArray(within.between) ? within.between : ["", ""];
      const part = (i) => scalarInput(builder, "datetime", [], range[i], (value) => {
        within.between = range;
        range[i] = value;
        builder.changed();
      }, "within");
      row.append(part(0), ` ${T.and} `, part(1));
    }
    return row;
  }

  const PROPERTY_SHAPES = { in: "list", not_in: "list" };
  const NUMERIC = ["gt", "gte", "lt", "lte"];

  function propertyFilter(builder, node, item, i, properties) {
    const T = builder.text;
    const spec = properties.find((p) => p.name === item.property);
    const choices = properties.map((p) => [p.name, p.label]);
    const valueType = (op, property) => (NUMERIC.includes(op) || (property && property.type === "number") ? "number"
      : property && property.type === "boolean" ? "choice" : "text");
    const booleans = [{ value: true, label: T.yes }, { value: false, label: T.no }];
    const type = valueType(item.op, spec);
    const set = (value) => { item.value = value; builder.changed(); };
    const list = (PROPERTY_SHAPES[item.op] || "one") === "list";
    // Values the event definition labels ("alipay" → 支付宝) are chosen by their labels;
    // "another value…" types one it does not know.
    const known = type === "text" && spec && Array.isArray(spec.values) && spec.values.length
      && ["eq", "ne", "in", "not_in"].includes(item.op) && !builder.typedValues.has(item) ? spec.values : null;
    const typeAnother = () => { builder.typedValues.add(item); builder.refresh(); };
    let value;
    if (known && list) {
      value = el("span", {}, [listInput(builder, "choice", known, item.value, set, "value"),
        el("button", { type: "button", class: "cb-other-value", text: T.other_value, onclick: typeAnother })]);
    } else if (known) {
      const another = { another: true };
      value = scalarInput(builder, "choice", known.concat([{ value: another, label: T.other_value }]), item.value,
        (chosen) => { if (chosen === another) { item.value = ""; typeAnother(); } else set(chosen); }, "value");
    } else {
      value = list ? listInput(builder, type, booleans, item.value, set, "value")
        : scalarInput(builder, type, booleans, item.value, set, "value");
    }
    return el("div", { class: "cb-row cb-where", "data-key": `where[${i}]` }, [
      T.property + " ",
      select(choices, item.property, (name) => {
        const before = valueType(item.op, spec);
        item.property = name;
        if (valueType(item.op, properties.find((p) => p.name === name)) !== before) item.value = "";
        builder.refresh();
      }, "property"),
      select(Object.entries(builder.options.operators.property), item.op, (op) => {
        const list = (PROPERTY_SHAPES[op] || "one") === "list";
        if (list !== Array.isArray(item.value)) item.value = list ? [] : "";
        item.op = op;
        builder.refresh();
      }, "op"),
      value,
      el("button", { type: "button", class: "cb-remove", text: "×", title: T.remove,
        onclick: () => { node.where.splice(i, 1); if (!node.where.length) delete node.where; builder.refresh(); } }),
    ]);
  }

  const sequenceKind = {
    name: "sequence",
    matches: (node) => "sequence" in node,
    create: () => ({ sequence: [{ event: "" }, { event: "" }], op: "then", within_days: 7 }),
    /* Up to 5 steps in order; each later step within N days of the one before (its own
     * within_days, else the sequence's); the last may be "but did not do" (a drop-off);
     * optionally an event that must not happen in between. */
    render(node, ctx, builder) {
      const T = builder.text;
      const steps = Array.isArray(node.sequence) ? node.sequence : [];
      const step = (i) => el("div", { class: "cb-step", "data-path": `${ctx.path}sequence[${i}].` }, [
        el("div", { class: "cb-errors" }),
        isObject(steps[i]) ? eventEditor(builder, steps[i], { measured: false, windowed: i === 0 }) : null,
      ]);
      const parts = [el("div", { class: "cb-row" }, [T.sequence_first]), step(0)];
      steps.slice(1).forEach((later, offset) => {
        const i = offset + 1;
        const last = i === steps.length - 1;
        const gapKey = i === 1 ? "within_days" : `sequence[${i}].within_days`;
        const gap = isObject(later) && later.within_days !== undefined ? later.within_days : node.within_days;
        parts.push(el("div", { class: "cb-row cb-sequence-gap" }, [
          last ? select([["then", T.sequence_then], ["not_then", T.sequence_not_then]], node.op || "then",
            (op) => { node.op = op; builder.refresh(); }, "op") : T.sequence_then,
          " " + T.sequence_within + " ",
          daysInput(gap, (days) => {
            if (i === 1 && later.within_days === undefined) node.within_days = days;
            else later.within_days = days;
            builder.changed();
          }, gapKey, T),
          steps.length > 2 ? el("button", { type: "button", class: "cb-remove", text: "×", title: T.remove,
            onclick: () => { node.sequence.splice(i, 1); builder.refresh(); } }) : null,
        ]));
        parts.push(step(i));
      });
      if (isObject(node.not_between)) {
        parts.push(el("div", { class: "cb-row" }, [T.sequence_not_between,
          el("button", { type: "button", class: "cb-remove", text: "×", title: T.remove,
            onclick: () => { delete node.not_between; builder.refresh(); } })]));
        parts.push(el("div", { class: "cb-step", "data-path": `${ctx.path}not_between.` }, [
          el("div", { class: "cb-errors" }), eventEditor(builder, node.not_between, { measured: false, windowed: false })]));
      }
      parts.push(el("div", { class: "cb-row cb-adders" }, [
        steps.length < 5 ? el("button", { type: "button", class: "cb-link", "data-add": "step", text: T.add_step,
          onclick: () => { node.sequence = steps.concat([{ event: "" }]); builder.refresh(); } }) : null,
        !("not_between" in node) ? el("button", { type: "button", class: "cb-link", "data-add": "not_between",
          text: T.add_not_between, onclick: () => { node.not_between = { event: "" }; builder.refresh(); } }) : null,
      ]));
      return [el("div", { class: "cb-sequence" }, parts)];
    },
  };

  /* Kinds whose values come from a catalogue list (consent purposes, segments): offered
   * once the server sends a non-empty list. */
  function listKind(name, listName, ops) {
    return {
      name,
      matches: (node) => name in node,
      create: () => ({ [name]: "", op: ops[0] }),
      available: (options) => Array.isArray(options[listName]) && options[listName].length > 0,
      render(node, ctx, builder) {
        return [
          select(ops.map((op) => [op, builder.text[`${name}_${op}`]]), node.op, (op) => { node.op = op; builder.changed(); }, "op"),
          picker(builder, builder.options[listName] || [], node[name], (value) => { node[name] = value; builder.refresh(); }, name),
        ];
      },
    };
  }

  /* Campaign behaviour: what happened to the customer's messages of one campaign (or of any,
   * optionally on one channel), optionally "but not" a later action on the same message,
   * how many such messages, and when. Offered once the server lists campaigns. */
  const campaignKind = {
    name: "campaign",
    matches: (node) => "campaign" in node,
    create: () => ({ campaign: "", action: "received" }),
    available: (options) => Array.isArray(options.campaigns) && options.campaigns.length > 0,
    render(node, ctx, builder) {
      const T = builder.text;
      const O = builder.options;
      const campaigns = [{ value: "any", label: T.campaign_any }].concat(O.campaigns || []);
      const head = el("div", { class: "cb-row" }, [picker(builder, campaigns, node.campaign, (value) => {
        node.campaign = value;
        if (value !== "any") delete node.channel;
        builder.refresh();
      }, "campaign")]);
      if (node.campaign === "any") {
        head.append(" ", select([["", T.campaign_any_channel]].concat(O.channels || []), node.channel || "", (channel) => {
          if (channel) node.channel = channel; else delete node.channel;
          builder.changed();
        }, "channel"));
      }
      head.append(" ", select(O.campaign_actions || [], node.action, (action) => {
        node.action = action;
        if (node.without && !(O.campaign_without[action] || []).includes(node.without)) delete node.without;
        builder.refresh();
      }, "action"));
      const later = (O.campaign_without || {})[node.action] || [];
      if (later.length) {
        const choices = [["", T.campaign_without_none]].concat((O.campaign_actions || []).filter(([a]) => later.includes(a)));
        head.append(" " + T.campaign_without + " ", select(choices, node.without || "", (without) => {
          if (without) node.without = without; else delete node.without;
          builder.changed();
        }, "without"));
      }
      const compared = isObject(node.count) ? node.count : { op: "gte", value: 1 };
      const update = (change) => { node.count = Object.assign({}, compared, change); builder.changed(); };
      const count = el("div", { class: "cb-row" }, [select(Object.entries(O.operators.count), compared.op, (op) => {
        const value = op === "between" ? (Array.isArray(compared.value) ? compared.value : [compared.value, ""])
          : (Array.isArray(compared.value) ? compared.value[0] : compared.value);
        update({ op, value }); builder.refresh();
      }, "count")]);
      if (compared.op === "between") {
        const range = Array.isArray(compared.value) ? compared.value.slice() : ["", ""];
        [0, 1].forEach((i) => {
          if (i) count.append(" – ");
          count.append(scalarInput(builder, "number", [], range[i], (value) => { range[i] = value; update({ value: range.slice() }); }, "count"));
        });
      } else {
        count.append(scalarInput(builder, "number", [], compared.value, (value) => update({ value }), "count"));
      }
      count.append(" " + T.messages);
      return [el("div", { class: "cb-event cb-campaign" }, [head, count, windowEditor(builder, node)])];
    },
  };

  const groupKind = {
    name: "group",
    matches: (node) => "all" in node || "any" in node,
    create: () => ({ all: [] }),
  };
  const notKind = { name: "not", matches: (node) => "not" in node, create: () => ({ not: {} }) };

  // Anything else (a kind this builder does not know yet): its JSON, editable in place.
  const unknownKind = {
    name: "unknown",
    matches: () => true,
    render(node, ctx, builder) {
      const area = el("textarea", { rows: 4, cols: 60, class: "cb-raw", "data-key": "" });
      area.value = JSON.stringify(node, null, 2);
      area.addEventListener("input", () => {
        try {
          const parsed = JSON.parse(area.value);
          area.classList.remove("cb-invalid");
          ctx.set(parsed);
          builder.changed();
        } catch (error) {
          area.classList.add("cb-invalid");
        }
      });
      return [el("div", { class: "help", text: builder.text.unknown_hint }), area];
    },
  };

  // Order matters: the first kind whose `matches` accepts a node draws it.
  const KINDS = [
    groupKind, notKind, fieldKind, tagKind, eventKind, sequenceKind, campaignKind,
    listKind("consent", "purposes", ["granted", "not_granted", "state_denied", "state_withdrawn", "state_expired",
      "state_never_asked", "state_granted"]),
    listKind("segment", "segments", ["in", "not_in"]),
    unknownKind,
  ];
  const CONDITION_KINDS = ["field", "tag", "event", "sequence", "campaign", "consent", "segment"];
  const kindOf = (node) => KINDS.find((kind) => isObject(node) && kind.matches(node)) || unknownKind;
  const kindNamed = (name) => KINDS.find((kind) => kind.name === name);

  // --- the builder ------------------------------------------------------------------

  class Builder {
    constructor(root) {
      this.rootElement = root;
      const config = JSON.parse(document.getElementById(root.dataset.config).textContent);
      this.options = config.options;
      this.previewUrl = config.previewUrl;
      this.definingField = config.definingField;  // the slug of the segment being edited
      this.text = this.options.text;
      this.fields = new Map(this.options.fields.map((f) => [f.name, f]));
      this.events = new Map(this.options.events.map((e) => [e.value, e]));
      this.tree = root.querySelector(".cb-tree");
      this.jsonBox = root.querySelector(".cb-json");
      this.textarea = this.jsonBox.querySelector("textarea");
      this.jsonError = root.querySelector(".cb-json-error");
      this.toggle = root.querySelector(".cb-toggle-json");
      this.preview = root.querySelector(".cb-preview");
      this.form = root.closest("form");
      this.requests = 0;
      this.errors = [];
      // Conditions just added, as they were created: nothing chosen yet, so their
      // problems ("choose a field") are not shown until the user touches them.
      this.fresh = new Map();
      this.typedValues = new WeakSet();  // property filters whose value staff chose to type

      this.toggle.addEventListener("click", () => this.setJsonMode(!this.jsonMode));
      this.textarea.addEventListener("input", () => this.readTextarea());
      const text = this.textarea.value.trim();
      try {
        this.definition = text ? JSON.parse(text) : {};
        this.setJsonMode(false);
      } catch (error) {
        this.definition = {};
        this.setJsonMode(true);
        this.readTextarea();
      }
      this.schedulePreview(0);
    }

    setJsonMode(on) {
      if (!on && this.jsonMode && !this.readTextarea()) return;  // stay until the JSON parses
      this.jsonMode = on;
      this.jsonBox.hidden = !on;
      this.tree.hidden = on;
      this.toggle.textContent = on ? this.text.edit_visual : this.text.edit_json;
      if (!on) this.render();
    }

    readTextarea() {
      try {
        const text = this.textarea.value.trim();
        this.definition = text ? JSON.parse(text) : {};
        this.jsonError.hidden = true;
        this.schedulePreview();
        return true;
      } catch (error) {
        this.jsonError.textContent = fmt(this.text.bad_json, { s: error.message });
        this.jsonError.hidden = false;
        return false;
      }
    }

    /* Public: replace the whole definition (the quick audience box), drawn and counted. */
    load(definition) {
      this.textarea.value = JSON.stringify(definition, null, 2);
      if (this.jsonMode) this.setJsonMode(false);
      else if (this.readTextarea()) this.render();
    }

    // A structural change: draw again, then as any change.
    refresh() {
      this.render();
      this.changed();
    }

    // Any change: the textarea follows, and the preview soon after.
    changed() {
      this.textarea.value = JSON.stringify(this.definition, null, 2);
      this.schedulePreview();
    }

    render() {
      const ctx = {
        path: "",
        set: (node) => { this.definition = node; },
        remove: () => { this.definition = {}; },
      };
      const root = this.definition;
      const content = [];
      if (isEmpty(root)) {
        // Start with an "all" group around whatever is added first.
        content.push(this.adders((node) => {
          if (kindOf(node) === groupKind) { this.definition = node; return ""; }
          this.definition = { all: [node] };
          return "all[0].";
        }));
      } else {
        content.push(this.renderNode(root, ctx));
        if (kindOf(root) !== groupKind) {
          content.push(this.adders((node) => { this.definition = { all: [root, node] }; return "all[1]."; }));
        }
      }
      this.tree.replaceChildren(el("div", { class: "cb-title", text: this.text.match }), ...content);
      this.showErrors();
      if (this.openPath !== undefined) {
        const added = this.tree.querySelector(`[data-path="${CSS.escape(this.openPath)}"] .cb-picker-button`);
        this.openPath = undefined;
        if (added) added.click();
      }
    }

    renderNode(node, ctx) {
      const kind = kindOf(node);
      const box = el("div", { class: `cb-node cb-${kind.name}`, "data-kind": kind.name, "data-path": ctx.path });
      box.cbNode = node;
      if (kind === groupKind) {
        const key = "all" in node ? "all" : "any";
        const children = Array.isArray(node[key]) ? node[key] : [];
        box.append(el("div", { class: "cb-head" }, [
          select([["all", this.text.all], ["any", this.text.any]], key, (next) => {
            if (next === key) return;
            node[next] = node[key];
            delete node[key];
            this.refresh();
          }, key),
          ctx.path ? removeButton(this, ctx) : null,
        ]), el("div", { class: "cb-errors" }));
        const list = el("ol", { class: "cb-children" }, children.map((child, i) => el("li", {}, [this.renderNode(child, {
          path: `${ctx.path}${key}[${i}].`,
          set: (replacement) => { children[i] = replacement; },
          remove: () => { children.splice(i, 1); },
        })])));
        box.append(list, this.adders((added) => {
          if (!Array.isArray(node[key])) node[key] = [];
          node[key].push(added);
          return `${ctx.path}${key}[${node[key].length - 1}].`;
        }));
      } else if (kind === notKind) {
        box.append(el("div", { class: "cb-head" }, [el("strong", { text: this.text.not }), removeButton(this, ctx)]),
          el("div", { class: "cb-errors" }));
        const childCtx = {
          path: `${ctx.path}not.`,
          set: (replacement) => { node.not = replacement; },
          remove: () => { node.not = {}; },
        };
        box.append(isEmpty(node.not) ? this.adders((added) => { node.not = added; return childCtx.path; })
          : this.renderNode(node.not, childCtx));
      } else {
        box.append(el("div", { class: "cb-condition" }, [
          el("span", { class: "cb-kind", text: this.text[`kind_${kind.name}`] }),
          el("div", { class: "cb-body" }, kind.render(node, ctx, this)),
          removeButton(this, ctx),
        ]), el("div", { class: "cb-errors" }));
      }
      return box;
    }

    /* The "+ …" buttons; `add(node)` puts the new node in place and may return its
     * path, whose first picker then opens. */
    adders(add) {
      const button = (name, label) => el("button", { type: "button", class: "button cb-add", "data-add": name, text: label,
        onclick: () => {
          const node = kindNamed(name).create();
          this.fresh.set(node, JSON.stringify(node));
          const path = add(node);
          this.openPath = path;
          this.refresh();
        } });
      const conditions = CONDITION_KINDS.map(kindNamed).filter((kind) => !kind.available || kind.available(this.options));
      return el("div", { class: "cb-adders" }, [
        ...conditions.map((kind) => button(kind.name, `+ ${this.text[`kind_${kind.name}`]}`)),
        button("group", this.text.add_group),
        button("not", this.text.add_not),
      ]);
    }

    // --- preview and errors

    schedulePreview(delay = 500) {
      clearTimeout(this.timer);
      this.timer = setTimeout(() => this.runPreview(), delay);
    }

    defining() {
      const input = this.definingField && this.form ? this.form.elements[this.definingField] : null;
      return input && input.value ? input.value : null;
    }

    isBlank() {
      const root = this.definition;
      return isEmpty(root) || (kindOf(root) === groupKind && !(root.all || root.any || []).length);
    }

    async runPreview() {
      const T = this.text;
      const request = ++this.requests;
      if (this.isBlank()) {
        this.errors = [];
        this.showErrors();
        this.preview.replaceChildren(el("p", { class: "cb-status", text: T.empty }));
        return;
      }
      this.preview.classList.add("cb-busy");
      if (!this.preview.querySelector(".cb-count")) {
        this.preview.replaceChildren(el("p", { class: "cb-status", text: T.counting }));
      }
      let answer;
      try {
        const response = await fetch(this.previewUrl, {
          method: "POST", credentials: "same-origin",
          headers: { "Content-Type": "application/json", "X-CSRFToken": csrfToken(this.form) },
          body: JSON.stringify({ definition: this.definition, defining: this.defining() }),
        });
        answer = await response.json();
        if (!response.ok && !answer.errors) throw new Error(response.statusText);
      } catch (error) {
        if (request === this.requests) {
          this.preview.classList.remove("cb-busy");
          this.preview.replaceChildren(el("p", { class: "errornote", text: fmt(T.failed, { s: error.message }) }));
        }
        return;
      }
      if (request !== this.requests) return;  // a newer definition is being counted
      this.preview.classList.remove("cb-busy");
      this.errors = answer.errors || [];
      this.showErrors();
      this.showPreview(answer);
    }

    // A condition added and not touched since: nothing chosen in it yet.
    isFresh(node) {
      if (!node || !this.fresh.has(node)) return false;
      if (JSON.stringify(node) === this.fresh.get(node)) return true;
      this.fresh.delete(node);
      return false;
    }

    // The problems to show: none inside a condition nothing has been chosen in yet.
    shownErrors() {
      const nodes = Array.from(this.tree.querySelectorAll("[data-path]"));
      return this.errors.map((error) => ({ error, node: this.nodeOf(error.path, nodes) }))
        .filter(({ error, node }) => !(node && (this.isFresh(node.cbNode) || this.isFreshFilter(node, error.path))));
    }

    // A property filter just added to an event ("where[0].value" of it), nothing typed yet.
    isFreshFilter(node, path) {
      const found = /^where\[(\d+)\]/.exec(path.slice(node.dataset.path.length));
      const where = found && node.cbNode && Array.isArray(node.cbNode.where) ? node.cbNode.where : null;
      return Boolean(where && this.isFresh(where[Number(found[1])]));
    }

    nodeOf(path, nodes) {
      const wanted = path === "$" ? "" : path;
      let best = null;
      for (const node of nodes) {
        const prefix = node.dataset.path;
        if (wanted.startsWith(prefix) && (!best || prefix.length > best.dataset.path.length)) best = node;
      }
      return best;
    }

    showPreview(answer) {
      const T = this.text;
      const title = el("h3", { text: T.preview_title });
      if (this.errors.length && !this.shownErrors().length && !this.jsonMode) {
        // Only conditions still being filled in: say so, without red.
        this.preview.replaceChildren(title, el("p", { class: "cb-status cb-incomplete", text: T.incomplete }));
      } else if (this.errors.length) {
        // In the JSON view the tree is hidden: list the problems with their paths.
        this.preview.replaceChildren(title, this.jsonMode
          ? el("ul", { class: "errorlist" }, this.errors.map((e) => el("li", { text: `${e.path}: ${e.message}` })))
          : el("p", { class: "cb-status errornote", text: T.has_errors }));
      } else if (answer.timed_out) {
        this.preview.replaceChildren(title, el("p", { class: "cb-status cb-timed-out",
          text: fmt(T.timed_out, { n: answer.timeout_seconds }) }));
      } else {
        const rows = answer.sample.map((p) => el("tr", {}, [
          el("td", {}, [el("a", { href: p.url, text: p.name || p.uuid })]),
          el("td", { text: p.phone }), el("td", { text: p.city }),
        ]));
        this.preview.replaceChildren(title,
          el("p", { class: "cb-count", "data-count": answer.count, text: fmt(T.count, { n: answer.count.toLocaleString() }) }),
          rows.length ? el("table", { class: "cb-sample" }, [
            el("caption", { text: T.sample_title }),
            el("thead", {}, [el("tr", {}, [T.name, T.phone, T.city].map((h) => el("th", { text: h })))]),
            el("tbody", {}, rows),
          ]) : el("p", { class: "cb-status", text: T.nobody }));
      }
    }

    /* Each problem goes to the node whose path is the longest prefix of the problem's
     * path ("all[2].count.value" → the node at "all[2]."), and marks the input named
     * by what follows ("count"). */
    showErrors() {
      this.tree.querySelectorAll(".cb-errors").forEach((box) => box.replaceChildren());
      this.tree.querySelectorAll(".cb-invalid").forEach((input) => input.classList.remove("cb-invalid"));
      for (const { error: { path, message }, node: best } of this.shownErrors()) {
        const wanted = path === "$" ? "" : path;
        const target = best ? best.querySelector(":scope > .cb-errors") : null;
        (target || this.tree).append(el("p", { class: "cb-error errornote", "data-path": null, text: message }));
        if (!best) continue;
        // "where[0].op" marks the filter's row, "value[1]" the value inputs.
        const rest = wanted.slice(best.dataset.path.length);
        const keys = new Set([rest.split(".")[0], rest.split(/[.[]/)[0]]);
        best.querySelectorAll("[data-key]").forEach((input) => {
          if (keys.has(input.dataset.key) && input.closest("[data-path]") === best) input.classList.add("cb-invalid");
        });
      }
    }
  }

  function start() {
    document.querySelectorAll(".condition-builder[data-config]").forEach((root) => {
      if (!root.builder) root.builder = new Builder(root);
    });
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
