// evnet Central's web dashboard: a snapshot, then batches of changes, from /api/stream (server-sent events).
"use strict";

const sites = new Map();      // site id -> {el, cps: Map(cp id -> el), data}
const seen = new Set();       // event seqs shown
const MAX_LOG = 300;
const fmt = (v, digits, unit) => (v === null || v === undefined) ? "–" : `${Number(v).toFixed(digits)}${unit}`;

function siteEl(id) {
  let s = sites.get(id);
  if (s) return s;
  const el = document.getElementById("site-template").content.firstElementChild.cloneNode(true);
  el.dataset.site = id;
  el.querySelector(".site-name").textContent = id;
  el.querySelector(".stop-all").onclick = () => act(id, "stop", {cp: "all"});
  el.querySelector(".resume-all").onclick = () => act(id, "resume", {cp: "all"});
  el.querySelector(".set-limit").onclick = () =>
    act(id, "limit", {limit_a: Number(el.querySelector(".limit-input").value)});
  el.querySelector(".add-driver").onclick = () => act(id, "add_driver", {
    id: el.querySelector(".driver-id").value.trim(), key: el.querySelector(".driver-key").value.trim()});
  const all = [...document.querySelectorAll("#sites > .site")];
  const after = all.find(x => x.dataset.site > id);
  document.getElementById("sites").insertBefore(el, after || null);
  s = {el, cps: new Map(), data: null};
  sites.set(id, s);
  return s;
}

function cpEl(site, id) {
  const s = siteEl(site);
  let el = s.cps.get(id);
  if (el) return el;
  el = document.getElementById("cp-template").content.firstElementChild.cloneNode(true);
  el.dataset.cp = `${site}/${id}`;
  el.querySelector(".cp-id").textContent = id;
  el.querySelector(".stop").onclick = () => act(site, "stop", {cp: id});
  el.querySelector(".resume").onclick = () => act(site, "resume", {cp: id});
  el.querySelector(".set-cap").onclick = () => {  // the site's cap on this point (set_cp_max); empty clears it
    const v = el.querySelector(".cap-input").value.trim();
    act(site, "cap", {cp: id, max_current_a: v === "" ? null : Number(v)});
  };
  const box = s.el.querySelector(".cps");
  const after = [...box.children].find(x => x.dataset.cp > el.dataset.cp);
  box.insertBefore(el, after || null);
  s.cps.set(id, el);
  return el;
}

function showCp(c) {
  const el = cpEl(c.site, c.cp);
  el.className = `cp ${c.colour}`;
  el.dataset.status = c.status;
  el.querySelector(".legend").textContent = c.legend;
  el.querySelector(".where").textContent = c.location || "";
  el.querySelector(".price").textContent = c.price_eur_kwh === null ? "" : `€${c.price_eur_kwh.toFixed(2)}/kWh`;
  let live = "";
  if (c.status === "CHARGING") {
    live = `${fmt(c.power_kw, 1, " kW")} · ${fmt(c.energy_kwh, 2, " kWh")} · €${fmt(c.cost_eur, 2, "")}` +
           ` · ${c.driver || "?"}`;
  } else if (c.status === "RESERVED") {
    live = `reserved by ${c.reserved_by}`;
  }
  el.querySelector(".live").textContent = live;
  el.querySelector(".why").textContent = c.status === "CHARGING" && c.limit_reason ?
    `limited: ${c.limit_reason.replaceAll("_", " ")}${c.limit_a === null ? "" : ` (${c.limit_a} A)`}` : "";
}

function showSite(d) {
  const s = siteEl(d.site);
  s.data = d;
  const limit = d.limit_a;
  s.el.querySelector(".site-sum").textContent = `${fmt(d.sum_a, 1, " A")} of ${fmt(limit, 0, " A")}`;
  s.el.querySelector(".site-tickets").textContent = d.tickets_waiting ? `${d.tickets_waiting} ticket(s) waiting` : "";
  const fill = s.el.querySelector(".meter-fill");
  const pct = limit ? Math.min(100, 100 * d.sum_a / limit) : 0;
  fill.style.width = `${pct}%`;
  fill.classList.toggle("over", limit && d.sum_a > limit);
  const input = s.el.querySelector(".limit-input");
  if (limit && document.activeElement !== input && !input.value) input.value = limit;
}

function showEvents(events) {
  const log = document.getElementById("log");
  for (const e of events) {
    if (seen.has(e.seq)) continue;
    seen.add(e.seq);
    const li = document.createElement("li");
    li.className = e.kind;
    li.dataset.kind = e.kind;
    const t = document.createElement("span");
    t.className = "t";
    t.textContent = new Date(e.t * 1000).toLocaleTimeString();
    li.append(t, `${e.site}: ${e.text}`);
    log.prepend(li);
  }
  while (log.children.length > MAX_LOG) log.lastElementChild.remove();
}

function apply(d) {
  d.sites.forEach(showSite);
  d.cps.forEach(showCp);
  showEvents(d.events);
}

async function act(site, action, args) {
  const out = document.getElementById("result");
  out.className = "";
  out.textContent = `${site}: ${action}…`;
  try {
    const r = await fetch("/api/action", {method: "POST", headers: {"Content-Type": "application/json"},
                                          body: JSON.stringify({site, action, ...args})});
    const a = await r.json();
    out.className = a.ok ? "ok" : "refused";
    out.textContent = a.ok ? `${site}: ${action} done` : `${site}: ${action} refused: ${a.error} ${a.reason || ""}`;
  } catch (err) {
    out.className = "refused";
    out.textContent = `${site}: ${action} failed: ${err}`;
  }
}

function connect() {
  const link = document.getElementById("link");
  const es = new EventSource("/api/stream");
  es.addEventListener("snapshot", ev => { apply(JSON.parse(ev.data)); link.textContent = "live"; link.className = "link up"; });
  es.addEventListener("changes", ev => apply(JSON.parse(ev.data)));
  es.onerror = () => { link.textContent = "reconnecting…"; link.className = "link down"; };
  window.centralStream = es;
}

connect();
