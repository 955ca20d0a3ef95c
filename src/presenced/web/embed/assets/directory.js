"use strict";
(function () {
  var token = new URLSearchParams(location.search).get("token") || "";
  var list = document.getElementById("people");
  var notice = document.getElementById("notice");
  var search = document.getElementById("search");
  var people = new Map(); // user id -> {user_id, full_name, email, active_timestamp, idle_timestamp, row}
  var threshold = 200;
  var skew = 0; // server time minus local time, in seconds
  var source = null;
  var retryTimer = null;

  function now() { return Date.now() / 1000 + skew; }

  // Zulip's web app rule: active if the last active report is within the offline threshold,
  // else idle if the last report of any kind is, else offline.
  function state(p) {
    var t = now();
    if (p.active_timestamp != null && t - p.active_timestamp < threshold) return "active";
    if (p.idle_timestamp != null && t - p.idle_timestamp < threshold) return "idle";
    return "offline";
  }

  function ago(seconds) {
    var units = [[86400, "day"], [3600, "hour"], [60, "minute"]];
    for (var i = 0; i < units.length; i++) {
      var n = Math.floor(seconds / units[i][0]);
      if (n >= 1) return n + " " + units[i][1] + (n === 1 ? "" : "s") + " ago";
    }
    return "less than a minute ago";
  }

  function statusText(p, s) {
    if (s === "active") return "active now";
    if (s === "idle") return "idle";
    if (p.active_timestamp == null) return "offline";
    return "last active " + ago(Math.max(0, now() - p.active_timestamp));
  }

  function row(p) {
    var li = document.createElement("li");
    li.setAttribute("data-user-id", String(p.user_id));
    var dot = document.createElement("span");
    dot.className = "dot";
    dot.setAttribute("aria-hidden", "true");
    var who = document.createElement("span");
    who.className = "who";
    var name = document.createElement("span");
    name.className = "name";
    name.textContent = p.full_name;
    name.title = p.email;
    var status = document.createElement("span");
    status.className = "status";
    who.appendChild(name);
    who.appendChild(status);
    li.appendChild(dot);
    li.appendChild(who);
    p.row = li;
    p.statusNode = status;
    p.search = (p.full_name + " " + p.email).toLowerCase();
    return li;
  }

  var collator = new Intl.Collator(undefined, { sensitivity: "base" });
  var order = []; // people in display order
  var dirty = true; // the order may have to change

  // Re-age everyone and show the search matches; keep online people first, then by name
  // (re-sorting only when someone's state or the data changed).
  function render() {
    var query = search.value.trim().toLowerCase();
    people.forEach(function (p) {
      var s = state(p);
      if (p.row.getAttribute("data-presence") !== s) {
        p.row.setAttribute("data-presence", s);
        dirty = true;
      }
      var text = statusText(p, s);
      if (p.statusNode.textContent !== text) p.statusNode.textContent = text;
      var hidden = query !== "" && p.search.indexOf(query) === -1;
      if (p.row.hidden !== hidden) p.row.hidden = hidden;
    });
    if (!dirty) return;
    dirty = false;
    order = Array.from(people.values());
    order.sort(function (a, b) {
      var online = (a.row.getAttribute("data-presence") === "offline" ? 1 : 0) -
        (b.row.getAttribute("data-presence") === "offline" ? 1 : 0);
      return online || collator.compare(a.full_name, b.full_name) || a.user_id - b.user_id;
    });
    for (var i = 0; i < order.length; i++) {
      var li = order[i].row;
      if (list.children[i] !== li) list.insertBefore(li, list.children[i] || null);
    }
  }

  function setState(s, text) {
    document.body.setAttribute("data-state", s);
    notice.textContent = text;
  }

  function clock(data) { skew = data.server_timestamp - Date.now() / 1000; }

  function onSnapshot(event) {
    var data = JSON.parse(event.data);
    clock(data);
    threshold = data.offline_threshold_secs;
    people = new Map();
    list.textContent = "";
    data.people.forEach(function (p) {
      people.set(String(p.user_id), p);
      list.appendChild(row(p));
    });
    setState("live", data.people.length ? "" : "Nobody to show.");
    dirty = true;
    render();
  }

  function onPresence(event) {
    var data = JSON.parse(event.data);
    clock(data);
    Object.keys(data.presences).forEach(function (id) {
      var p = people.get(id);
      if (p) {
        p.active_timestamp = data.presences[id].active_timestamp;
        p.idle_timestamp = data.presences[id].idle_timestamp;
      }
    });
    render();
  }

  function revoked() {
    if (source) source.close();
    source = null;
    people = new Map();
    list.textContent = "";
    setState("revoked", "This directory link is no longer valid.");
  }

  // EventSource retries by itself when a connection drops; an HTTP error closes it for good,
  // so then ask the JSON endpoint whether the token still works and try again later.
  function onError() {
    if (!source || source.readyState !== EventSource.CLOSED) {
      setState("reconnecting", "Reconnecting…");
      return;
    }
    source = null;
    fetch("presence.json?token=" + encodeURIComponent(token), { cache: "no-store" })
      .then(function (r) { if (r.status === 401 || r.status === 400) revoked(); else retry(); })
      .catch(retry);
  }

  function retry() {
    setState("reconnecting", "Reconnecting…");
    clearTimeout(retryTimer);
    retryTimer = setTimeout(connect, 2000);
  }

  function connect() {
    source = new EventSource("stream?token=" + encodeURIComponent(token));
    source.addEventListener("snapshot", onSnapshot);
    source.addEventListener("presence", onPresence);
    source.addEventListener("revoked", revoked);
    source.onerror = onError;
  }

  search.addEventListener("input", render);
  setInterval(render, 1000);
  connect();
})();
