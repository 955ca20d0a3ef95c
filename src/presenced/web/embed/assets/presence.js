"use strict";
// presenced: live presence dots for a host page.
//   <script src="https://PRESENCED/embed/presence.js" data-token="TOKEN" async></script>
// puts a dot after every <span data-presenced-user="EMAIL">, and sets data-presence
// ("active", "idle" or "offline") on the span, for the people the token covers.
(function () {
  var script = document.currentScript;
  if (!script) return;
  var token = script.getAttribute("data-token") || "";
  var base = new URL(".", script.src).href;
  var colours = { active: "#2ea043", idle: "#f0a030", offline: "#a0a0a8" };
  var byEmail = new Map();
  var threshold = 200;
  var skew = 0;
  var source = null;

  function state(p) {
    var t = Date.now() / 1000 + skew;
    if (p.active_timestamp != null && t - p.active_timestamp < threshold) return "active";
    if (p.idle_timestamp != null && t - p.idle_timestamp < threshold) return "idle";
    return "offline";
  }

  function dotFor(el) {
    var next = el.nextElementSibling;
    if (next && next.hasAttribute("data-presenced-dot")) return next;
    var dot = document.createElement("span");
    dot.setAttribute("data-presenced-dot", "");
    dot.setAttribute("role", "img");
    var s = dot.style;
    s.display = "inline-block";
    s.width = s.height = "0.6em";
    s.borderRadius = "50%";
    s.marginLeft = "0.35em";
    s.verticalAlign = "middle";
    el.insertAdjacentElement("afterend", dot);
    return dot;
  }

  function decorate() {
    var elements = document.querySelectorAll("[data-presenced-user]");
    for (var i = 0; i < elements.length; i++) {
      var el = elements[i];
      var p = byEmail.get((el.getAttribute("data-presenced-user") || "").toLowerCase());
      if (!p) {
        var stale = el.nextElementSibling;
        if (stale && stale.hasAttribute("data-presenced-dot")) stale.remove();
        el.removeAttribute("data-presence");
        continue;
      }
      var s = state(p);
      var dot = dotFor(el);
      if (dot.getAttribute("data-presence") !== s) {
        dot.setAttribute("data-presence", s);
        dot.setAttribute("aria-label", s);
        dot.title = s;
        dot.style.background = colours[s];
        el.setAttribute("data-presence", s);
      }
    }
  }

  function clock(data) { skew = data.server_timestamp - Date.now() / 1000; }

  function connect() {
    source = new EventSource(base + "stream?token=" + encodeURIComponent(token));
    source.addEventListener("snapshot", function (event) {
      var data = JSON.parse(event.data);
      clock(data);
      threshold = data.offline_threshold_secs;
      byEmail = new Map();
      data.people.forEach(function (p) { byEmail.set(p.email.toLowerCase(), p); });
      decorate();
    });
    source.addEventListener("presence", function (event) {
      var data = JSON.parse(event.data);
      clock(data);
      byEmail.forEach(function (p) {
        var times = data.presences[String(p.user_id)];
        if (times) {
          p.active_timestamp = times.active_timestamp;
          p.idle_timestamp = times.idle_timestamp;
        }
      });
      decorate();
    });
    source.addEventListener("revoked", function () {
      source.close();
      byEmail = new Map();
      decorate();
    });
    source.onerror = function () {
      if (source.readyState === EventSource.CLOSED) setTimeout(connect, 5000);
    };
  }

  setInterval(decorate, 1000);
  connect();
})();
