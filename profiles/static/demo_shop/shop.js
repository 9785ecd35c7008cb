/* The demo shop's behaviour: a cart in localStorage, a member login, and every action sent
 * through the chosen tracking SDK (Segment analytics.js or the Sensors Data web SDK), both
 * loaded from this server (vendor/) and pointed at this server's collection endpoints. */
(function () {
  "use strict";
  var cfg = JSON.parse(document.getElementById("shop-config").textContent);
  var text = window.SHOP_TEXT;
  var origin = location.protocol + "//" + location.host;
  var CART = "demo_shop_cart", MEMBER = "demo_shop_member";

  function status(message) { document.getElementById("shop-status").textContent = message; }
  function readJSON(key, fallback) {
    try { return JSON.parse(localStorage.getItem(key)) || fallback; } catch (e) { return fallback; }
  }
  function isPhone(value) { return /^(\+?86)?1\d{10}$/.test(value); }
  function product(id) { var p = cfg.products[id]; return p && { id: id, name: p.name, category: p.category, price: Number(p.price) }; }

  // ---- the two SDKs behind one small interface ----
  function segmentTracker() {
    var settings = {
      apiKey: cfg.writeKey,
      apiHost: location.host + cfg.segmentPath, // e.g. 127.0.0.1:8000/collect/v1 (analytics.js adds /t, /p, /i …)
      protocol: location.protocol.replace(":", ""),
      deliveryStrategy: { strategy: "standard", config: { keepalive: true } } // survives leaving the page
    };
    // cdnSettings passed in: no settings are fetched from cdn.segment.com; cdnURL keeps any
    // other look-up on this server.
    var analytics = window.AnalyticsNext.AnalyticsBrowser.load({
      writeKey: cfg.writeKey,
      cdnURL: origin + "/static/demo_shop/vendor/segment",
      cdnSettings: { integrations: { "Segment.io": settings }, plan: {}, metrics: { sampleRate: 0 }, remotePlugins: [] }
    }, { integrations: { "Segment.io": settings } });
    window.analytics = analytics;
    return {
      page: function (name, props) { return analytics.page(name, props); },
      productViewed: function (p) {
        return analytics.track("Product Viewed", { product_id: p.id, name: p.name, category: p.category, price: p.price, currency: "CNY" });
      },
      productAdded: function (p) {
        return analytics.track("Product Added", { product_id: p.id, name: p.name, category: p.category, price: p.price, quantity: 1, currency: "CNY" });
      },
      orderCompleted: function (order) {
        return analytics.track("Order Completed", {
          order_id: order.id, total: order.total, revenue: order.total, currency: "CNY",
          products: order.lines.map(function (l) { return { product_id: l.id, name: l.name, category: l.category, price: l.price, quantity: l.quantity }; })
        });
      },
      login: function (id) { return isPhone(id) ? analytics.identify({ phone: id }) : analytics.identify(id); },
      logout: function () { analytics.reset(); },
      anonymousId: function () { return analytics.user().then(function (u) { return u.anonymousId(); }); }
    };
  }

  function sensorsTracker() {
    var sensors = window.sensorsDataAnalytic201505;
    sensors.init({
      server_url: origin + cfg.sensorsPath + "?project=default&token=" + encodeURIComponent(cfg.writeKey),
      send_type: "beacon", // navigator.sendBeacon: survives leaving the page (the default "image" does not)
      is_track_single_page: false,
      use_client_time: true,
      show_log: false,
      heatmap: { clickmap: "not_collect", scroll_notice_map: "not_collect" }
    });
    function track(name, props) { return new Promise(function (done) { sensors.track(name, props, done); }); }
    return {
      page: function () { return new Promise(function (done) { sensors.quick("autoTrack", { callback: done }); }); },
      productViewed: function (p) {
        return track("ViewProduct", { product_id: p.id, product_name: p.name, category: p.category, price: p.price });
      },
      productAdded: function (p) {
        return track("AddToShoppingCart", { product_id: p.id, product_name: p.name, category: p.category, price: p.price, quantity: 1 });
      },
      orderCompleted: function (order) {
        return track("SubmitOrder", { order_id: order.id, order_amount: order.total, currency: "CNY", product_count: order.lines.length });
      },
      login: function (id) {
        if (isPhone(id) && sensors.bind) { sensors.bind("$identity_mobile", id); return Promise.resolve(); }
        sensors.login(id);
        return Promise.resolve();
      },
      logout: function () { sensors.logout(true); },
      anonymousId: function () { return Promise.resolve(sensors.quick("getAnonymousID")); }
    };
  }

  var tracker = cfg.sdk === "sensors" ? sensorsTracker() : segmentTracker();
  window.demoShopTracker = tracker;

  // ---- the cart ----
  function cart() { return readJSON(CART, {}); }
  function showCount() {
    var items = cart(), n = 0;
    Object.keys(items).forEach(function (id) { n += items[id]; });
    document.getElementById("cart-count").textContent = String(n);
  }
  function cartLines() {
    var items = cart();
    return Object.keys(items).filter(function (id) { return cfg.products[id]; }).map(function (id) {
      var p = product(id); p.quantity = items[id]; return p;
    });
  }
  function money(value) { return "¥" + value.toFixed(2); }

  // ---- the member ----
  function showMember() {
    var member = localStorage.getItem(MEMBER);
    var name = document.getElementById("member-name");
    name.hidden = !member;
    name.textContent = member ? text.loggedIn + " " + member : "";
    document.getElementById("login-id").hidden = !!member;
    document.getElementById("login-button").hidden = !!member;
    document.getElementById("logout-button").hidden = !member;
  }
  document.getElementById("login-form").addEventListener("submit", function (event) {
    event.preventDefault();
    var id = document.getElementById("login-id").value.trim();
    if (!id) { status(text.needId); return; }
    localStorage.setItem(MEMBER, id);
    showMember();
    tracker.login(id).then(function () { status(text.loggedIn + " " + id); });
  });
  document.getElementById("logout-button").addEventListener("click", function () {
    localStorage.removeItem(MEMBER);
    tracker.logout();
    showMember();
  });
  var seeMe = document.getElementById("see-me");
  if (seeMe) {
    seeMe.addEventListener("click", function (event) {
      event.preventDefault();
      tracker.anonymousId().then(function (anonymousId) {
        var member = localStorage.getItem(MEMBER) || "";
        location.href = cfg.profileUrl + "?anonymous_id=" + encodeURIComponent(anonymousId || "") +
          "&user_id=" + encodeURIComponent(isPhone(member) ? "" : member);
      });
    });
  }

  // ---- the pages ----
  if (cfg.page === "product") {
    var p = product(document.getElementById("product").dataset.product);
    tracker.page("product", { product_id: p.id });
    tracker.productViewed(p);
    document.getElementById("add-to-cart").addEventListener("click", function () {
      var items = cart();
      items[p.id] = (items[p.id] || 0) + 1;
      localStorage.setItem(CART, JSON.stringify(items));
      showCount();
      tracker.productAdded(p).then(function () { status(text.added); });
    });
  } else if (cfg.page === "cart") {
    tracker.page("cart");
    var render = function () {
      var lines = cartLines(), body = document.getElementById("cart-lines"), total = 0;
      body.textContent = "";
      lines.forEach(function (l) {
        var row = body.insertRow();
        row.insertCell().textContent = l.name;
        row.insertCell().textContent = String(l.quantity);
        row.insertCell().textContent = money(l.price * l.quantity);
        total += l.price * l.quantity;
      });
      document.getElementById("cart-total").textContent = money(total);
      document.getElementById("place-order").disabled = !lines.length;
      if (!lines.length) status(text.empty);
      return { lines: lines, total: Math.round(total * 100) / 100 };
    };
    render();
    document.getElementById("place-order").addEventListener("click", function () {
      var order = render();
      if (!order.lines.length) return;
      order.id = "DEMO-" + Date.now().toString(36).toUpperCase();
      localStorage.removeItem(CART);
      showCount();
      tracker.orderCompleted(order).then(function () { render(); status(text.ordered + " " + order.id); });
    });
  } else {
    tracker.page("home");
  }
  showCount();
  showMember();
})();
