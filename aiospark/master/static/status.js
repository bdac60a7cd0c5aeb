// The aiospark status page: renders GET /v1/status snapshots pushed as server-sent events.
// Every value from the cluster is put into the page as text (never as HTML).
"use strict";

const UNITS = ["B", "KiB", "MiB", "GiB", "TiB"];

function bytes(n) {
  let i = 0;
  while (n >= 1024 && i < UNITS.length - 1) { n /= 1024; i += 1; }
  return (i === 0 ? String(n) : n.toFixed(1)) + " " + UNITS[i];
}

function seconds(s) {
  if (s < 1) return (s * 1000).toFixed(0) + " ms";
  if (s < 60) return s.toFixed(1) + " s";
  if (s < 3600) return (s / 60).toFixed(1) + " min";
  return (s / 3600).toFixed(1) + " h";
}

function clock(t) {
  return new Date(t * 1000).toLocaleTimeString();
}

// el("td", {class: "num"}, "text", childNode, ...): attributes are set, children added as
// text nodes or elements.
function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (key === "style") {
      for (const [prop, v] of Object.entries(value)) node.style.setProperty(prop, v);
    } else {
      node.setAttribute(key, String(value));
    }
  }
  for (const child of children) {
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function badge(state) {
  return el("span", {class: "badge " + state}, state);
}

// A bar: `done` of `total` filled, then `running` striped after it.
function bar(done, running, total, kind) {
  const pct = (n) => (total > 0 ? Math.min(100, (100 * n) / total) : 0) + "%";
  return el("div", {class: "bar " + (kind || ""), role: "progressbar",
                    "aria-valuemin": 0, "aria-valuemax": total, "aria-valuenow": done},
    el("div", {class: "fill", style: {width: pct(done)}}),
    el("div", {class: "running", style: {left: pct(done), width: pct(running)}}));
}

function fill(tableId, rows, columns, emptyText) {
  const body = document.querySelector("#" + tableId + " tbody");
  const fresh = rows.length ? rows : [el("tr", {}, el("td", {class: "empty", colspan: columns}, emptyText))];
  body.replaceChildren(...fresh);
}

function renderSummary(s) {
  const used = s.workers.reduce((a, w) => a + w.memory_used, 0);
  const budget = s.workers.reduce((a, w) => a + w.memory_bytes, 0);
  const tasks = s.workers.reduce((a, w) => a + w.running_tasks, 0);
  const running = s.jobs.filter((j) => j.state === "running").length;
  const cards = [
    ["workers", s.workers.length], ["cores", s.cores], ["running tasks", tasks],
    ["memory used", bytes(used) + " / " + bytes(budget)], ["running jobs", running],
    ["drivers", s.apps.filter((a) => a.connected).length], ["uptime", seconds(s.uptime)],
  ];
  document.getElementById("summary").replaceChildren(...cards.map(([label, value]) =>
    el("div", {class: "card", "data-card": label},
      el("div", {class: "value"}, value), el("div", {class: "label"}, label))));
}

function renderWorkers(s) {
  const rows = s.workers.concat(s.lost_workers).map((w) => {
    const done = w.tasks_succeeded + w.tasks_failed + w.tasks_cancelled;
    return el("tr", {"data-worker": w.worker_id, "data-state": w.state},
      el("td", {class: "mono"}, w.worker_id),
      el("td", {class: "mono"}, w.url),
      el("td", {class: "num"}, w.cores),
      el("td", {class: "num running-tasks"}, w.running_tasks + " / " + w.cores,
         bar(0, w.running_tasks, w.cores)),
      el("td", {class: "num"}, bytes(w.memory_used) + " / " + bytes(w.memory_bytes),
         bar(w.storage_used, w.execution_used, w.memory_bytes, "memory"),
         el("div", {class: "muted"}, "storage " + bytes(w.storage_used) +
            ", execution " + bytes(w.execution_used))),
      el("td", {class: "num", title: w.tasks_failed + " failed, " + w.tasks_cancelled +
                " cancelled"}, done, w.tasks_failed ? el("div", {class: "error"},
                w.tasks_failed + " failed") : ""),
      el("td", {class: "num"}, bytes(w.spilled_bytes)),
      el("td", {class: "num"}, seconds(Math.max(0, s.now - w.last_heartbeat)) + " ago"),
      el("td", {}, badge(w.state)));
  });
  fill("workers", rows, 9, "no workers");
}

function renderStage(stage) {
  const label = "stage " + stage.stage_id + " · " + (stage.kind === "result" ? "result" : "map");
  const count = stage.state === "skipped" ? "skipped"
    : stage.done + "/" + stage.tasks + (stage.running ? " (" + stage.running + " running)" : "");
  return el("div", {class: "stage", "data-stage": stage.stage_id, "data-state": stage.state},
    el("span", {class: "label"}, label),
    bar(stage.done, stage.running, stage.tasks),
    el("span", {class: "count"}, count));
}

// Each application's label: its name, followed by the start of its id when another
// application on the page has the same name (two runs of one program), so that rows of
// different applications never read the same (job ids start at 1 in every application).
function appLabels(s) {
  const count = {};
  for (const a of s.apps) count[a.name] = (count[a.name] || 0) + 1;
  return Object.fromEntries(s.apps.map((a) => [a.app_id,
    !a.name ? a.app_id : count[a.name] > 1 ? a.name + " (" + a.app_id.slice(0, 10) + ")" : a.name]));
}

function appCell(labels, appId, name) {
  return el("td", {class: "app", title: appId}, labels[appId] || name || appId);
}

function renderJobs(s) {
  const labels = appLabels(s);
  const rows = s.jobs.map((j) => {
    const end = j.completed === null ? s.now : j.completed;
    return el("tr", {"data-job": j.app_id + ":" + j.job_id, "data-state": j.state},
      appCell(labels, j.app_id, j.app_name),
      el("td", {class: "num"}, j.job_id),
      el("td", {},
         j.user_description ? el("div", {class: "user-description"}, j.user_description) : "",
         el("span", {class: "mono description"}, j.description),
         j.group ? el("span", {class: "group"}, "group " + j.group) : "",
         j.pool && j.pool !== "default" ? el("span", {class: "pool"}, "pool " + j.pool) : "",
         j.error ? el("div", {class: "error"}, j.error) : ""),
      el("td", {}, badge(j.state)),
      el("td", {class: "num"}, clock(j.submitted)),
      el("td", {class: "num"}, seconds(Math.max(0, end - j.submitted))),
      el("td", {class: "stages"}, ...j.stages.map(renderStage)));
  });
  fill("jobs", rows, 7, "no jobs yet");
}

function renderCached(s) {
  const labels = appLabels(s);
  const rows = s.cached.map((c) => el("tr", {"data-rdd": c.app_id + ":" + c.rdd_id},
    appCell(labels, c.app_id, ""),
    el("td", {class: "num"}, c.rdd_id),
    el("td", {class: "num"}, c.splits),
    el("td", {class: "num"}, bytes(c.memory_bytes)),
    el("td", {class: "num"}, bytes(c.disk_bytes)),
    el("td", {}, ...c.locations.map((l) => el("div", {class: "mono"},
      l.worker_id + " (" + l.host + "): " + l.splits + (l.splits === 1 ? " split, " : " splits, ") +
      bytes(l.memory_bytes + l.disk_bytes))))));
  fill("cached", rows, 6, "nothing cached");
}

function renderApps(s) {
  const rows = s.apps.map((a) => el("tr", {"data-app": a.app_id},
    el("td", {}, a.name), el("td", {class: "mono"}, a.app_id),
    el("td", {}, badge(a.connected ? "connected" : "gone")),
    el("td", {class: "num"}, clock(a.first_seen)),
    el("td", {class: "num"}, a.cores == null ? "-" : a.cores),
    el("td", {class: "num"}, a.jobs_running)));
  fill("apps", rows, 6, "no drivers");
}

function render(status) {
  renderSummary(status);
  renderWorkers(status);
  renderJobs(status);
  renderCached(status);
  renderApps(status);
}

function showConnection(state, text) {
  const node = document.getElementById("connection");
  node.className = "badge " + state;
  node.replaceChildren(text);
  if (state === "closed") {
    node.append(" ", el("a", {href: "/ui/login"}, "log in again"));
  }
}

function connect() {
  const source = new EventSource("/ui/events");
  source.onopen = () => showConnection("live", "live");
  source.onmessage = (event) => {
    render(JSON.parse(event.data));
    document.body.dataset.updated = String(Date.now());
  };
  source.onerror = () => {
    // The browser retries a dropped stream by itself; a refused one (the session expired,
    // or the master restarted and forgot it) is closed for good.
    if (source.readyState === EventSource.CLOSED) {
      showConnection("closed", "disconnected:");
    } else {
      showConnection("waiting", "reconnecting…");
    }
  };
}

connect();
