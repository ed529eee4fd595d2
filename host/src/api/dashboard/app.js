// The dashboard: lists the meters, and plots the chosen meter's statistics over time,
// one series per resource, refreshed every 10 s; below, the newest events of the
// window, and the plugins the serving process has loaded and refused, and its reloads
// (when it loads plugins: `ceilo run`). Talks only to the v2 API.
"use strict";

const state = { meter: null, plot: null };
const el = (id) => document.getElementById(id);

function headers() {
  const h = { Accept: "application/json" };
  const t = el("token").value || localStorage.getItem("ceilo-token") || "";
  if (t) h["X-Auth-Token"] = t;
  return h;
}

async function api(path) {
  // Relative to the page (/dashboard/), so that a URL prefix carries over.
  const r = await fetch(".." + path, { headers: headers() });
  const body = await r.json().catch(() => null);
  if (!r.ok) {
    const msg = body && body.error_message ? body.error_message.faultstring : r.statusText;
    throw new Error(`${r.status}: ${msg}`);
  }
  return body;
}

async function loadMeters() {
  const meters = await api("/v2/meters");
  const names = [...new Set(meters.map((m) => m.name))].sort();
  const ul = el("meters");
  ul.replaceChildren(...names.map((n) => {
    const li = document.createElement("li");
    const b = document.createElement("button");
    b.textContent = n;
    b.dataset.meter = n;
    b.onclick = () => choose(n);
    li.append(b);
    return li;
  }));
  if (!state.meter && names.length) choose(names.includes("cpu_util") ? "cpu_util" : names[0]);
}

function choose(name) {
  state.meter = name;
  for (const b of el("meters").querySelectorAll("button")) {
    b.setAttribute("aria-current", String(b.dataset.meter === name));
  }
  el("title").textContent = name;
  refresh();
}

function iso(seconds) {
  return new Date(seconds * 1000).toISOString().replace("Z", "");
}

async function refresh() {
  if (!state.meter) return;
  const windowSecs = Number(el("window").value);
  const now = Math.floor(Date.now() / 1000);
  const period = Math.max(10, Math.round(windowSecs / 120));
  const q = new URLSearchParams();
  q.append("period", String(period));
  q.append("groupby", "resource_id");
  q.append("q.field", "timestamp"); q.append("q.op", "ge"); q.append("q.value", iso(now - windowSecs)); q.append("q.type", "");
  try {
    const stats = await api(`/v2/meters/${encodeURIComponent(state.meter)}/statistics?${q}`);
    draw(stats, period);
    el("error").textContent = "";
    el("status").textContent = `updated ${new Date().toLocaleTimeString()}`;
  } catch (e) {
    el("error").textContent = String(e.message || e);
  }
}

function draw(stats, period) {
  const times = [...new Set(stats.map((s) => Date.parse(s.period_start + "Z") / 1000))].sort((a, b) => a - b);
  const resources = [...new Set(stats.map((s) => s.groupby.resource_id))].sort();
  const index = new Map(times.map((t, i) => [t, i]));
  const series = resources.map(() => times.map(() => null));
  stats.forEach((s) => {
    const r = resources.indexOf(s.groupby.resource_id);
    series[r][index.get(Date.parse(s.period_start + "Z") / 1000)] = s.avg;
  });
  const unit = stats.length ? stats[0].unit : "";
  const palette = ["#1d3557", "#e63946", "#2a9d8f", "#f4a261", "#6a4c93", "#457b9d", "#8ab17d"];
  const opts = {
    width: Math.max(400, el("chart").clientWidth || 800),
    height: 360,
    scales: { x: { time: true } },
    axes: [{}, { label: `avg ${unit} per ${period} s` }],
    series: [{}].concat(resources.map((r, i) => ({ label: r, stroke: palette[i % palette.length], width: 2, spanGaps: true }))),
  };
  if (state.plot) state.plot.destroy();
  state.plot = new uPlot(opts, [times].concat(series), el("chart"));
  el("chart").dataset.series = String(resources.length);
  el("chart").dataset.points = String(stats.length);
}

// Without a token, the events API wants to know who asks (as Panko without
// Keystone): an API without tokens trusts its callers, so the dashboard is an admin
// looking at every project.
function eventHeaders() {
  const h = headers();
  if (!h["X-Auth-Token"]) Object.assign(h, { "X-User-Id": "dashboard", "X-Project-Id": "dashboard", "X-Roles": "admin" });
  return h;
}

const EVENTS_SHOWN = 25;

async function loadEvents() {
  const windowSecs = Number(el("window").value);
  const q = new URLSearchParams();
  q.append("q.field", "start_timestamp"); q.append("q.op", "ge");
  q.append("q.value", iso(Math.floor(Date.now() / 1000) - windowSecs)); q.append("q.type", "");
  if (!headers()["X-Auth-Token"]) {
    q.append("q.field", "all_tenants"); q.append("q.op", "eq"); q.append("q.value", "True"); q.append("q.type", "");
  }
  q.append("limit", "1000");
  const r = await fetch(`../v2/events?${q}`, { headers: eventHeaders() });
  const body = await r.json().catch(() => null);
  if (!r.ok) throw new Error(`events: ${r.status}: ${body && body.error_message ? body.error_message.faultstring : r.statusText}`);
  const newest = body.slice(-EVENTS_SHOWN).reverse();
  const cell = (text) => { const td = document.createElement("td"); td.textContent = text; return td; };
  el("events").tBodies[0].replaceChildren(...newest.map((e) => {
    const tr = document.createElement("tr");
    tr.dataset.event = e.message_id;
    const traits = e.traits.map((t) => `${t.name}=${t.value}`).join(" ");
    tr.append(cell(e.generated), cell(e.event_type), cell(traits.length > 160 ? traits.slice(0, 159) + "…" : traits));
    return tr;
  }));
  el("events-summary").textContent = body.length
    ? `${body.length} event(s) in the window; the newest ${newest.length}:`
    : "no events in the window";
}

async function loadPlugins() {
  const r = await fetch("../v2/plugins", { headers: headers() });
  // 404: this process loads no plugins (`ceilo api`): no panel.
  if (r.status === 404) { el("plugins-panel").hidden = true; return; }
  const view = await api("/v2/plugins");
  const cell = (text) => { const td = document.createElement("td"); td.textContent = text; return td; };
  el("plugins").tBodies[0].replaceChildren(...view.plugins.map((p) => {
    const tr = document.createElement("tr");
    tr.dataset.plugin = `${p.kind}/${p.name}`;
    tr.append(cell(p.kind), cell(p.name), cell(p.version), cell(String(p.generation)),
      cell(p.loaded_at), cell(p.library.split("/").pop()), cell(p.isolation));
    return tr;
  }));
  el("plugins-refused").replaceChildren(...view.rejected.map((x) => {
    const li = document.createElement("li");
    li.textContent = `refused ${x.library.split("/").pop()}: ${x.reason}`;
    return li;
  }), ...view.failed.map((f) => {
    const li = document.createElement("li");
    li.textContent = `${f.kind} ${f.name} left out: ${f.reason}`;
    return li;
  }));
  const rl = view.reloads;
  el("plugins-summary").textContent = `${view.service}: ${view.plugins.length} plugin(s) from ${view.plugin_dir}; `
    + `reloads ${rl.applied} applied, ${rl.failed} refused` + (rl.last_error ? ` (last refused: ${rl.last_error})` : "");
  el("plugins-panel").hidden = false;
}

el("token").value = localStorage.getItem("ceilo-token") || "";
el("token").onchange = () => { localStorage.setItem("ceilo-token", el("token").value); loadMeters().catch(showError); };
el("window").onchange = () => { refresh(); loadEvents().catch(showError); };
function showError(e) { el("error").textContent = String(e.message || e); }
loadMeters().catch(showError);
loadPlugins().catch(showError);
loadEvents().catch(showError);
setInterval(() => {
  loadMeters().catch(showError); loadPlugins().catch(showError); loadEvents().catch(showError); refresh();
}, 10000);
