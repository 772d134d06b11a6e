/* uwsgi-mules monitoring page: polls the JSON API and draws it.
   Every text from the instance is set with textContent (never innerHTML):
   what a task wrote shows as text, whatever it contains. */
(function () {
  "use strict";
  var config = JSON.parse(document.getElementById("mules-config").textContent);
  var TOKEN_KEY = "uwsgi-mules-token";
  var timer = null;
  var openDead = {};

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (name) {
      if (name === "text") { node.textContent = attrs[name]; }
      else if (name === "onclick") { node.addEventListener("click", attrs[name]); }
      else { node.setAttribute(name, attrs[name]); }
    });
    (children || []).forEach(function (child) { if (child) { node.appendChild(child); } });
    return node;
  }
  function svg(tag, attrs) {
    var node = document.createElementNS("http://www.w3.org/2000/svg", tag);
    Object.keys(attrs).forEach(function (name) { node.setAttribute(name, attrs[name]); });
    return node;
  }
  function replace(id, nodes) {
    var target = document.getElementById(id);
    while (target.firstChild) { target.removeChild(target.firstChild); }
    nodes.forEach(function (node) { if (node) { target.appendChild(node); } });
  }
  function num(value) { return value === null || value === undefined ? "?" : String(value); }
  function rate(value) { return value === null || value === undefined ? "?" : value.toFixed(1) + "/s"; }
  function seconds(value) {
    if (value === null || value === undefined) { return "?"; }
    if (value < 0.001) { return (value * 1e6).toFixed(0) + " \u00b5s"; }
    return value < 1 ? (value * 1000).toFixed(1) + " ms" : value.toFixed(2) + " s";
  }
  function when(epoch) { return epoch ? new Date(epoch * 1000).toLocaleString() : "-"; }
  function stat(label, value, cls) {
    return el("div", {"class": "stat " + (cls || "")}, [el("span", {"class": "label", text: label}),
      el("span", {"class": "value", text: value})]);
  }

  function header(data) {
    var parts = [data.address ? "stats " + data.address : "no stats server",
      data.reachable ? "uWSGI " + data.version + " (master pid " + num(data.master_pid) + ")"
        : (data.error ? "unreachable: " + data.error : ""),
      data.runtime_dir ? "runtime " + data.runtime_dir : "",
      data.plugin ? "queue counters: C plugin" : "queue counters: unknown",
      data.read_only ? "read-only" : "", "updated " + new Date(data.taken_at * 1000).toLocaleTimeString()];
    replace("instance", [el("span", {text: parts.filter(Boolean).join(" \u00b7 ")})]);
    var notes = data.unknown.map(function (why) { return el("div", {"class": "note", text: "unknown: " + why}); });
    data.problems.forEach(function (why) { notes.push(el("div", {"class": "problem", text: why})); });
    replace("alerts", notes);
  }

  function queueStats(queue) {
    if (!queue) { return [stat("depth", "?", "depth")]; }
    var v = queue.values, r = queue.rates;
    return [stat("depth", num(v.depth_messages), "depth"), stat("sent", num(v.sent) + " (" + rate(r.sent) + ")"),
      stat("received", num(v.received)), stat("refused", num(v.refused), v.refused ? "bad" : "")];
  }
  function muleCard(mule) {
    var running = mule.running ? mule.running.path + " for " + seconds(mule.running.seconds)
      : (mule.idle === null ? "?" : "idle");
    var c = mule.counters || {};
    var rows = queueStats(mule.queue).concat([
      stat("running", running, "running"),
      stat("ran", mule.counters ? num(c.ran) + " (" + rate(mule.rates.ran) + ")" : "?", "ran"),
      stat("failed", mule.counters ? num(c.failed) : "?", c.failed ? "bad" : ""),
      stat("waiting", num(mule.waiting), "waiting")]);
    return el("div", {"class": "card", id: "mule-" + mule.mule_id},
      [el("h3", {text: "mule " + mule.mule_id + (mule.pid ? " (pid " + mule.pid + ")" : "")})].concat(rows));
  }
  function cards(data) {
    var nodes = [];
    if (data.shared) { nodes.push(el("div", {"class": "card", id: "queue-shared"},
      [el("h3", {text: "shared queue"})].concat(queueStats(data.shared)))); }
    data.mules.forEach(function (mule) { nodes.push(muleCard(mule)); });
    data.farms.forEach(function (farm) {
      nodes.push(el("div", {"class": "card farm", id: "farm-" + farm.name},
        [el("h3", {text: "farm " + farm.name})].concat(queueStats(farm.queue))));
    });
    if (!nodes.length) { nodes.push(el("p", {text: "no mule known yet"})); }
    replace("cards", nodes);
  }

  /* points: [at, depth, ran_per_second]; column: 1 or 2 */
  function line(points, column, height, width, top, color) {
    var shown = points.filter(function (p) { return p[column] !== null; });
    if (shown.length < 2) { return null; }
    var max = Math.max.apply(null, shown.map(function (p) { return p[column]; }).concat([1]));
    var t0 = points[0][0], span = Math.max(1, points[points.length - 1][0] - t0);
    var coords = shown.map(function (p) {
      return ((p[0] - t0) / span * width).toFixed(1) + "," + (top + height - p[column] / max * height).toFixed(1);
    });
    return [svg("polyline", {points: coords.join(" "), fill: "none", stroke: color, "stroke-width": "2"}), max];
  }
  function graph(data) {
    var width = 600, height = 70, points = data.history.slice(-300);
    var chart = svg("svg", {viewBox: "0 0 " + width + " " + (2 * height + 40), width: "100%", role: "img"});
    [[1, "queued messages", "#2563eb", 14], [2, "tasks per second", "#059669", height + 34]]
      .forEach(function (spec) {
        var drawn = line(points, spec[0], height - 6, width, spec[3], spec[2]);
        var label = svg("text", {x: "2", y: String(spec[3] - 3), "font-size": "11", fill: "#333"});
        label.textContent = spec[1] + (drawn ? " (max " + drawn[1].toFixed(1) + ")" : " (no data yet)");
        chart.appendChild(label);
        chart.appendChild(svg("line", {x1: "0", x2: String(width), y1: String(spec[3] + height - 6),
          y2: String(spec[3] + height - 6), stroke: "#ccc"}));
        if (drawn) { chart.appendChild(drawn[0]); }
      });
    replace("graph", [chart]);
  }

  function table(headers, rows, id) {
    return el("table", id ? {id: id} : {}, [el("thead", {}, [el("tr", {}, headers.map(function (h) {
      return el("th", {text: h}); }))]), el("tbody", {}, rows)]);
  }
  function tasks(data) {
    if (!data.tasks.length) { replace("tasks", [el("p", {text: "no task figures"})]); return; }
    replace("tasks", [table(["task", "runs", "failures", "p50", "p90", "p99", "max", "dead"],
      data.tasks.map(function (t) {
        return el("tr", {}, [t.path, num(t.runs), num(t.failures), seconds(t.p50), seconds(t.p90), seconds(t.p99),
          seconds(t.max), num(t.dead)].map(function (c) { return el("td", {text: c}); }));
      }))]);
  }
  function waiting(data) {
    var rows = [];
    data.waiting.forEach(function (w) {
      w.calls.forEach(function (call) {
        rows.push(el("tr", {}, ["mule " + w.mule_id, call.path, when(call.due)].map(function (c) {
          return el("td", {text: c}); })));
      });
    });
    var total = data.waiting.reduce(function (n, w) { return n + w.count; }, 0);
    replace("waiting", [el("p", {id: "waiting-count", text: total + " waiting call(s)"}),
      rows.length ? table(["mule", "task", "due"], rows) : null]);
  }

  /* the periodic entries; outcomes can carry exception text: textContent only */
  function scheduleTable(data) {
    var entries = data.schedule || [];
    document.getElementById("schedule-section").hidden = !entries.length;
    if (!entries.length) { replace("schedule", []); return; }
    replace("schedule", [table(["entry", "schedule", "next due", "last due", "sent", "outcome"],
      entries.map(function (e) {
        var outcome = e.sending ? "sending (interrupted?)" : (e.outcome || "-");
        return el("tr", {"class": "schedule-entry", "data-entry": e.entry}, [
          el("td", {"class": "entry", text: e.entry}), el("td", {"class": "call", text: e.schedule}),
          el("td", {"class": "next-due", text: when(e.next_due)}), el("td", {"class": "last-due", text: when(e.last_due)}),
          el("td", {"class": "sent", text: when(e.sent_at)}), el("td", {"class": "outcome error", text: outcome})]);
      }), "schedule-table")]);
  }

  function actionHeaders() {
    var headers = {"Content-Type": "application/json"};
    headers[config.csrfHeader] = config.csrfToken;
    if (config.tokenNeeded) { headers["X-Mules-Token"] = sessionStorage.getItem(TOKEN_KEY) || ""; }
    return headers;
  }
  function act(action, ids) {
    var body = ids === null ? {all: true} : {ids: ids};
    return fetch(config.api + "dead/" + action, {method: "POST", credentials: "same-origin",
      headers: actionHeaders(), body: JSON.stringify(body)}).then(function (response) {
      return response.json().then(function (data) {
        var text = data.error ? "refused: " + data.error : action + ": " + data.done.length + " done" +
          (data.gone.length ? ", " + data.gone.length + " already taken by someone else" : "");
        replace("action-result", [el("span", {"class": data.error ? "problem" : "ok", text: text})]);
        refresh();
      });
    });
  }
  function button(label, cls, onclick) {
    return el("button", {type: "button", "class": cls, text: label, onclick: onclick});
  }
  function deadActions(data) {
    if (!config.canAct || data.read_only) {
      replace("dead-actions", [el("span", {"class": "note", text: "actions are off (read-only)"})]);
      return;
    }
    var nodes = [];
    if (config.tokenNeeded) {
      var input = el("input", {type: "password", id: "token", placeholder: "action token", autocomplete: "off"});
      input.value = sessionStorage.getItem(TOKEN_KEY) || "";
      input.addEventListener("change", function () { sessionStorage.setItem(TOKEN_KEY, input.value); });
      nodes.push(input);
    }
    nodes.push(button("Re-send all", "resend-all", function () { act("resend", null); }));
    nodes.push(button("Delete all", "delete-all danger", function () {
      if (window.confirm("Delete every dead task?")) { act("delete", null); } }));
    if (!document.getElementById("token") || !document.getElementById("dead-actions").childNodes.length) {
      replace("dead-actions", nodes);
    }
  }
  function deadRow(task) {
    var details = el("details", {"class": "dead-details"}, [el("summary", {text: "traceback"}),
      el("pre", {"class": "traceback", text: task.traceback || "(no traceback: the task killed its mule)"})]);
    if (openDead[task.id]) { details.setAttribute("open", ""); }
    details.addEventListener("toggle", function () { openDead[task.id] = details.open; });
    var cells = [el("td", {text: when(task.died_at)}), el("td", {"class": "call", text: task.call}),
      el("td", {text: task.target}), el("td", {text: String(task.attempts)}),
      el("td", {}, [el("div", {"class": "error", text: task.error}), details])];
    if (config.canAct && !data_read_only) {
      cells.push(el("td", {}, [button("Re-send", "resend", function () { act("resend", [task.id]); }),
        button("Delete", "delete danger", function () { act("delete", [task.id]); })]));
    }
    return el("tr", {id: "dead-" + task.id, "class": "dead-task", "data-id": task.id}, cells);
  }
  var data_read_only = false;
  function dead(data) {
    data_read_only = data.read_only;
    replace("dead-count", [document.createTextNode("(" + data.dead.length + ")")]);
    deadActions(data);
    var headers = ["died", "call", "sent to", "attempts", "error"].concat(config.canAct && !data.read_only
      ? ["actions"] : []);
    replace("dead", data.dead.length ? [table(headers, data.dead.map(deadRow), "dead-table")]
      : [el("p", {text: "no dead task"})]);
  }

  function draw(data) {
    header(data); cards(data); graph(data); tasks(data); waiting(data); scheduleTable(data); dead(data);
    document.body.setAttribute("data-updated", String(data.taken_at));
  }
  function refresh() {
    return fetch(config.api + "snapshot", {credentials: "same-origin"}).then(function (response) {
      return response.json();
    }).then(draw).catch(function (error) {
      replace("alerts", [el("div", {"class": "problem", text: "cannot read the snapshot: " + error})]);
    });
  }
  function schedule() {
    window.clearTimeout(timer);
    timer = window.setTimeout(function () {
      if (document.hidden) { schedule(); return; }  /* nobody looks: no request */
      refresh().then(schedule, schedule);
    }, config.refreshMs);
  }
  document.getElementById("result-form").addEventListener("submit", function (event) {
    event.preventDefault();
    var id = document.getElementById("result-id").value.trim();
    fetch(config.api + "result?id=" + encodeURIComponent(id), {credentials: "same-origin"})
      .then(function (response) { return response.json(); })
      .then(function (data) {
        document.getElementById("result").textContent = JSON.stringify(data, null, 2);
      });
  });
  refresh().then(schedule, schedule);
}());
