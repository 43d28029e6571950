// Symphony conductor UI: vanilla JavaScript over the JSON API, no build step.
// Every piece of data reaches the page as a text node (el() never parses HTML), so
// names, commands and log lines cannot inject markup.
"use strict";

(() => {
  const REFRESH_MS = 2000;
  const MAX_LOG_LINES = 5000;

  const $ = (sel, root = document) => root.querySelector(sel);
  const $$ = (sel, root = document) => Array.from(root.querySelectorAll(sel));

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key.startsWith("on") && typeof value === "function") node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, value === true ? "" : String(value));
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  // ------------------------------------------------------------------ formatting
  function num(value) {
    const n = Number(value);
    return Number.isFinite(n) ? n : null;
  }
  function fmt(n, digits = 1) {
    if (n === null) return "–";
    return Number.isInteger(n) ? String(n) : n.toFixed(digits).replace(/\.0+$/, "");
  }
  function bytes(value) {
    const n = num(value);
    if (n === null) return "–";
    const units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let v = n, i = 0;
    while (v >= 1024 && i < units.length - 1) { v /= 1024; i += 1; }
    return `${v.toFixed(v >= 100 || i === 0 ? 0 : 1)} ${units[i]}`;
  }
  function ago(seconds) {
    const s = num(seconds);
    if (s === null) return "–";
    if (s < 1) return `${s.toFixed(1)} s ago`;
    if (s < 90) return `${Math.round(s)} s ago`;
    if (s < 5400) return `${Math.round(s / 60)} min ago`;
    if (s < 172800) return `${Math.round(s / 3600)} h ago`;
    return `${Math.round(s / 86400)} d ago`;
  }
  function since(unixSeconds) {
    const t = num(unixSeconds);
    return t === null ? "–" : ago(Date.now() / 1000 - t);
  }
  function clock(unixSeconds) {
    const t = num(unixSeconds);
    return t === null ? "" : new Date(t * 1000).toLocaleString();
  }
  function timeOfDay(unixSeconds) {
    const t = num(unixSeconds);
    return t === null ? "" : new Date(t * 1000).toLocaleTimeString([], { hour12: false });
  }

  const STATE_CLASS = {
    running: "ok", ready: "ok", healthy: "ok", completed: "info",
    pending: "warn", assigned: "warn", starting: "warn", backoff: "warn", disconnected: "warn", late: "warn",
    "crash-loop": "bad", failed: "bad", exited: "bad", unknown: "bad", lost: "bad",
  };
  const badge = (text, cls) => el("span", { class: `badge ${cls || STATE_CLASS[text] || ""}` }, text);

  function meter(label, used, total, text) {
    const u = num(used) || 0, t = num(total) || 0;
    const pct = t > 0 ? Math.min(100, (u / t) * 100) : 0;
    const level = pct >= 90 ? "high" : pct >= 70 ? "mid" : "";
    const fill = el("div", { class: `fill ${level}` });
    fill.style.width = `${pct.toFixed(1)}%`; // the CSSOM, which the page's CSP allows (style="" it does not)
    return el("div", { class: "meter", title: `${label}: ${text}` },
      el("div", { class: "label" }, el("b", {}, label), el("span", {}, text)),
      el("div", { class: "track" }, fill));
  }

  // ------------------------------------------------------------------ API
  class ApiError extends Error {
    constructor(status, body) {
      super((body && body.detail) || `HTTP ${status}`);
      this.status = status;
      this.body = body || {};
    }
  }

  async function api(method, path, body) {
    // X-Symphony-UI: the conductor takes changes made with the session cookie only with it
    const init = { method, credentials: "same-origin", headers: { Accept: "application/json", "X-Symphony-UI": "1" } };
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    let resp;
    try {
      resp = await fetch(path, init);
    } catch (err) {
      throw new ApiError(0, { detail: "cannot reach the conductor" });
    }
    if (resp.status === 401) {
      window.location.href = "/ui";
      throw new ApiError(401, { detail: "signed out" });
    }
    let data = null;
    try { data = await resp.json(); } catch (err) { data = null; }
    if (!resp.ok) throw new ApiError(resp.status, data);
    return data;
  }

  function banner(message) {
    const b = $("#banner");
    b.hidden = !message;
    b.textContent = message || "";
  }

  // ------------------------------------------------------------------ state
  const state = {
    view: "nodes",
    depId: null,
    nodes: [],
    deps: [],
    experiments: null, // null: the conductor has no /experiments endpoint
    editing: null, // the deployment being edited, or null when creating
    logSource: null,
    logKey: "",
    busy: false,
  };

  // ------------------------------------------------------------------ nodes
  function healthOf(n) {
    if (n.state !== "ready") return n.state;
    const age = num(n.last_heartbeat_age), hb = num(n.heartbeat_sec) || 3;
    return age !== null && age > 2 * hb ? "late" : "healthy";
  }

  function capacityCell(n) {
    const total = n.capacities_total || {}, used = n.capacities_used || {};
    const classes = Object.keys(total).sort();
    if (!classes.length) return el("span", { class: "muted" }, "none declared");
    return classes.map((c) => meter(c, used[c] || 0, total[c], `${fmt(num(used[c]) || 0)} / ${fmt(num(total[c]))}`));
  }

  function cpuCell(n) {
    const cores = (n.cpu && n.cpu.logical_cores) || "?";
    const cpu = n.heartbeat && n.heartbeat.cpu;
    if (!cpu) return el("span", { class: "muted" }, `${cores} cores`);
    const pct = num(cpu.total_percent) || 0;
    return [meter("CPU", pct, 100, `${fmt(pct)}% of ${cores} cores`),
      el("span", { class: "sub" }, `load ${fmt(num(cpu.load_1m), 2)}`)];
  }

  function ramCell(n) {
    const total = num(n.memory && n.memory.total_bytes);
    const mem = n.heartbeat && n.heartbeat.memory;
    if (!mem) return el("span", { class: "muted" }, bytes(total));
    return meter("RAM", num(mem.used_bytes), total, `${bytes(mem.used_bytes)} / ${bytes(total)}`);
  }

  function gpuCell(n) {
    const gpus = n.gpus || [];
    if (!gpus.length) return el("span", { class: "muted" }, "none");
    const usage = new Map(((n.heartbeat && n.heartbeat.gpus) || []).map((g) => [String(g.index || 0), g]));
    return gpus.map((g) => {
      const u = usage.get(String(g.index || 0));
      const pct = u ? num(u.util_percent) || 0 : 0;
      return meter(`GPU ${g.index || 0}`, pct, 100, u ? `${fmt(pct)}% · ${bytes(u.mem_used_bytes)} / ${bytes(g.mem_total_bytes)}` : g.name || "");
    });
  }

  function jobsOn(nodeId) {
    let count = 0;
    for (const d of state.deps) for (const j of d.jobs || []) if (j.node === nodeId) count += 1;
    return count;
  }

  function renderNodes() {
    const rows = state.nodes.map((n) => el("tr", { "data-node": n.node_id },
      el("td", {}, el("b", {}, n.node_id),
        el("span", { class: "sub" }, [n.hostname, n.advertise_address].filter(Boolean).join(" · "))),
      el("td", {}, badge(healthOf(n))),
      el("td", {}, (n.groups || []).map((g) => el("span", { class: "chip" }, g))),
      el("td", {}, capacityCell(n)),
      el("td", {}, cpuCell(n)),
      el("td", {}, ramCell(n)),
      el("td", {}, gpuCell(n)),
      el("td", { title: n.connected_at ? `connected ${clock(n.connected_at)}` : "" },
        n.state === "ready" ? ago(n.last_heartbeat_age) : el("span", { class: "muted" }, n.state)),
      el("td", { class: "num" }, String(jobsOn(n.node_id)))));
    $("#nodes-table tbody").replaceChildren(...rows);
    $("#nodes-empty").hidden = state.nodes.length > 0;
  }

  // ------------------------------------------------------------------ deployments
  function lastExit(jobs) {
    const done = jobs.filter((j) => j.exit_code !== null && j.exit_code !== undefined);
    if (!done.length) return "–";
    done.sort((a, b) => (num(b.stopped_at) || 0) - (num(a.stopped_at) || 0));
    return String(done[0].exit_code);
  }

  function actionButtons(d) {
    const stopped = d.desired_state === "stopped";
    return el("span", { class: "actions" },
      el("button", { type: "button", class: "small", "data-action": "logs", "data-dep": d.id }, "Logs"),
      el("button", { type: "button", class: "small", "data-action": "edit", "data-dep": d.id }, "Edit"),
      stopped
        ? el("button", { type: "button", class: "small", "data-action": "start", "data-dep": d.id }, "Start")
        : el("button", { type: "button", class: "small", "data-action": "stop", "data-dep": d.id }, "Stop"),
      el("button", { type: "button", class: "small danger", "data-action": "delete", "data-dep": d.id }, "Delete"));
  }

  // An experiment's process runs as the deployment "<experiment>.<process>" (a dot no
  // deployment name can hold): it is shown and changed with its experiment.
  const isExperimentJob = (id) => id.includes(".");
  const ownDeployments = () => state.deps.filter((d) => !isExperimentJob(d.id));

  function renderDeployments() {
    const filter = $("#dep-filter").value.trim();
    const shown = ownDeployments().filter((d) => !filter || d.id.includes(filter));
    const rows = shown.map((d) => {
      const jobs = d.jobs || [];
      const running = jobs.filter((j) => j.state === "running").length;
      const nodes = [...new Set(jobs.map((j) => j.node).filter(Boolean))];
      const restarts = jobs.reduce((sum, j) => sum + (num(j.restarts) || 0), 0);
      return el("tr", { "data-dep": d.id },
        el("td", {}, el("a", { href: `#deployment/${encodeURIComponent(d.id)}` }, d.id),
          el("span", { class: "sub" }, `${d.kind || "exec"}${d.node_group ? ` · group ${d.node_group}` : ""}`)),
        el("td", {}, d.desired_state || "running"),
        el("td", { class: "state" }, badge(d.state)),
        el("td", { class: "num" }, `${running} / ${jobs.length}`),
        el("td", {}, nodes.length ? nodes.join(", ") : el("span", { class: "muted" }, "–")),
        el("td", { class: "num" }, String(restarts)),
        el("td", { class: "num" }, lastExit(jobs)),
        el("td", { class: "why" }, d.reason || ""),
        el("td", { class: "actions-col" }, actionButtons(d)));
    });
    $("#deps-table tbody").replaceChildren(...rows);
    $("#deps-empty").hidden = shown.length > 0;
  }

  function commandText(command) {
    if (Array.isArray(command)) return JSON.stringify(command);
    return command === undefined || command === null ? "" : String(command);
  }

  function renderDetail(d) {
    $("#dep-title").textContent = d.id;
    $("#dep-state").replaceChildren(badge(d.state), " ", el("span", { class: "muted" }, `desired: ${d.desired_state || "running"}`));
    if (isExperimentJob(d.id)) {
      const exp = d.id.split(".")[0];
      $("#dep-actions").replaceChildren(el("span", { class: "muted" }, "a process of experiment ",
        el("a", { href: "#experiments" }, exp), "; change it with symphony apply"));
    } else {
      $("#dep-actions").replaceChildren(...actionButtons(d).childNodes);
      $$("#dep-actions [data-action=logs]").forEach((b) => b.remove());
    }
    const reason = $("#dep-reason");
    reason.hidden = !d.reason;
    reason.textContent = d.reason ? `Why it is not running: ${d.reason}` : "";
    const cfg = d.config || {};
    const rp = d.restart_policy || {};
    const caps = Object.entries(d.capacity_requests || {}).map(([k, v]) => `${k}=${v}`).join(", ");
    const env = Object.entries(cfg.env || {}).map(([k, v]) => `${k}=${v}`).join("  ");
    const spec = [
      ["kind", d.kind || "exec"], ["command", commandText(cfg.command)],
      ["args", cfg.args && cfg.args.length ? JSON.stringify(cfg.args) : ""],
      ["image", cfg.image || ""], ["conda env", cfg.env_name || ""], ["environment", env],
      ["node group", d.node_group || "any"], ["replicas", String(d.replicas ?? 1)],
      ["capacity", caps || "none"],
      ["restart policy", `${rp.type || "on-failure"}, backoff ${rp.backoff_seconds ?? "–"} s, max restarts ${rp.max_restarts || "unlimited"}`],
      ["created", clock(d.created_at)], ["updated", clock(d.updated_at)],
    ].filter(([, v]) => v !== "");
    $("#dep-spec").replaceChildren(...spec.flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, v)]));
    const rows = (d.jobs || []).map((j) => el("tr", { "data-job": j.job_id },
      el("td", { class: "num" }, String(j.replica)),
      el("td", {}, j.node || "–"),
      el("td", {}, j.host || "–"),
      el("td", {}, badge(j.state)),
      el("td", { class: "num" }, j.pid ? String(j.pid) : "–"),
      el("td", { class: "num" }, String(j.restarts || 0)),
      el("td", { class: "num" }, j.exit_code === null || j.exit_code === undefined ? "–" : String(j.exit_code)),
      el("td", { title: clock(j.started_at) }, j.started_at ? since(j.started_at) : "–"),
      el("td", { class: "why" }, j.reason || "")));
    $("#jobs-table tbody").replaceChildren(...rows);
    const select = $("#log-replica");
    const wanted = (d.jobs || []).map((j) => String(j.replica));
    const have = $$("option", select).map((o) => o.value).filter(Boolean);
    if (wanted.join(",") !== have.join(",")) {
      const current = select.value;
      select.replaceChildren(el("option", { value: "" }, "all"), ...wanted.map((r) => el("option", { value: r }, r)));
      select.value = wanted.includes(current) ? current : "";
    }
  }

  const ALARMING_EVENTS = new Set(["unschedulable", "node-lost", "node-disconnected", "node-error", "fenced", "job-orphaned"]);

  function renderEvents(tbody, events, { withDeployment = true } = {}) {
    const rows = events.slice().reverse().map((e) => el("tr", { "data-event": e.id },
      el("td", { title: clock(e.ts) }, timeOfDay(e.ts)),
      el("td", {}, el("span", { class: `chip ${ALARMING_EVENTS.has(e.kind) ? "alarm" : ""}` }, e.kind)),
      withDeployment ? el("td", {}, e.deployment_id
        ? el("a", { href: `#deployment/${encodeURIComponent(e.deployment_id)}` }, e.deployment_id) : "") : null,
      el("td", {}, e.node_id || ""),
      el("td", { class: "message" }, e.message)));
    tbody.replaceChildren(...rows);
  }

  // ------------------------------------------------------------------ experiments
  // GET /experiments: [{name, cluster, created_at, processes: [{key, job_id, node, host, state,
  // pid, restarts, exit_code, reason, …}], addresses: {name: {host, port, node, process, exposed}}}]
  function renderExperiments() {
    const rows = [];
    for (const exp of state.experiments || []) {
      const procs = exp.processes || [];
      const addresses = Object.entries(exp.addresses || {});
      const head = el("td", { rowspan: Math.max(1, procs.length) }, el("b", {}, exp.name),
        el("span", { class: "sub" }, `${procs.length} processes · ${exp.cluster || ""}`));
      if (!procs.length) {
        rows.push(el("tr", { "data-exp": exp.name }, head, el("td", { colspan: 7, class: "muted" }, "no processes")));
      }
      procs.forEach((p, i) => {
        const provides = addresses.filter(([, a]) => a.process === p.key)
          .map(([name, a]) => el("span", { class: "chip", title: a.exposed ? "exposed" : "bound" }, `${name} ${a.host}:${a.port}`));
        rows.push(el("tr", { "data-exp": exp.name, "data-process": p.key },
          i === 0 ? head : null,
          el("td", {}, p.job_id ? el("a", { href: `#deployment/${encodeURIComponent(p.job_id)}` }, p.key) : p.key),
          el("td", {}, badge(p.state || "pending")),
          el("td", {}, p.node || "–"),
          el("td", {}, provides.length ? provides : el("span", { class: "muted" }, "–")),
          el("td", { class: "num" }, String(p.restarts || 0)),
          el("td", { class: "num" }, p.exit_code === null || p.exit_code === undefined ? "–" : String(p.exit_code)),
          el("td", { class: "why" }, p.reason || "")));
      });
    }
    $("#exps-table tbody").replaceChildren(...rows);
    $("#exps-empty").hidden = rows.length > 0;
  }

  async function probeExperiments() {
    try {
      const data = await api("GET", "/experiments");
      state.experiments = Array.isArray(data) ? data : data.experiments || data.items || [];
      $("#tabs [data-tab=experiments]").hidden = false;
    } catch (err) {
      state.experiments = null;
    }
  }

  // ------------------------------------------------------------------ logs
  function closeLogs() {
    if (state.logSource) state.logSource.close();
    state.logSource = null;
    state.logKey = "";
  }

  function logLine(entry, showReplica) {
    const stream = entry.stream === "stderr" ? "stderr" : "stdout";
    const meta = `${timeOfDay(entry.ts)}${showReplica ? ` [${entry.replica ?? ""}]` : ""} `;
    return el("span", { class: `ln ${stream}` }, el("span", { class: "meta" }, meta), entry.line);
  }

  function appendLogs(entries, showReplica) {
    const box = $("#log-box");
    const atBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 40;
    const placeholder = $(".none", box);
    if (placeholder && entries.length) placeholder.remove();
    box.append(...entries.map((e) => logLine(e, showReplica)));
    while (box.childElementCount > MAX_LOG_LINES) box.firstElementChild.remove();
    if (atBottom) box.scrollTop = box.scrollHeight;
  }

  async function openLogs(force = false) {
    const id = state.depId;
    if (!id) return;
    const replica = $("#log-replica").value;
    const tail = Math.max(0, parseInt($("#log-tail").value, 10) || 0);
    const follow = $("#log-follow").checked;
    const key = `${id}|${replica}|${tail}|${follow}`;
    if (!force && key === state.logKey) return;
    closeLogs();
    state.logKey = key;
    const box = $("#log-box");
    box.replaceChildren(el("span", { class: "none" }, "no output yet"));
    const dep = state.deps.find((d) => d.id === id);
    const showReplica = !replica && dep && (dep.jobs || []).length > 1;
    const params = new URLSearchParams({ tail: String(tail) });
    if (replica) params.set("replica", replica);
    const status = $("#log-status");
    if (!follow) {
      try {
        const data = await api("GET", `/deployments/${encodeURIComponent(id)}/logs?${params}`);
        appendLogs(data.lines || [], showReplica);
        status.textContent = `${(data.lines || []).length} lines`;
      } catch (err) {
        status.textContent = err.message;
      }
      return;
    }
    params.set("follow", "1");
    const source = new EventSource(`/deployments/${encodeURIComponent(id)}/logs?${params}`);
    state.logSource = source;
    status.textContent = "following…";
    source.addEventListener("log", (ev) => {
      try { appendLogs([JSON.parse(ev.data)], showReplica); } catch (err) { /* a malformed event: skip it */ }
    });
    source.addEventListener("end", (ev) => {
      let reason = "the stream ended";
      try { reason = JSON.parse(ev.data).reason || reason; } catch (err) { /* keep the default */ }
      status.textContent = reason;
      source.close();
    });
    source.addEventListener("open", () => { status.textContent = "following"; });
    source.addEventListener("error", () => {
      if (source.readyState === EventSource.CLOSED) status.textContent = "stream closed";
      else status.textContent = "reconnecting…";
    });
  }

  // ------------------------------------------------------------------ views and refresh
  function route() {
    const hash = decodeURIComponent(window.location.hash.replace(/^#/, "")) || "nodes";
    let view = hash, depId = null;
    if (hash.startsWith("deployment/")) { view = "deployment"; depId = hash.slice("deployment/".length); }
    if (!["nodes", "deployments", "deployment", "experiments", "events"].includes(view)) view = "nodes";
    if (view !== "deployment" || depId !== state.depId) {
      closeLogs();
      $("#log-box").replaceChildren();
    }
    state.view = view;
    state.depId = depId;
    for (const section of $$("main > section")) section.hidden = section.id !== `view-${view}`;
    const tab = view === "deployment" ? "deployments" : view;
    for (const a of $$("#tabs a")) a.classList.toggle("active", a.dataset.tab === tab);
    if (view === "deployment") $("#dep-title").textContent = depId;
    refresh();
  }

  function renderSummary() {
    const ready = state.nodes.filter((n) => n.state === "ready").length;
    const own = ownDeployments();
    const running = own.filter((d) => d.state === "running").length;
    const exps = state.experiments === null ? "" : ` · ${state.experiments.length} experiments`;
    $("#summary").textContent = `${ready}/${state.nodes.length} nodes ready · ${own.length} deployments, ${running} running${exps}`;
  }

  async function refresh() {
    if (state.busy) return;
    state.busy = true;
    try {
      const [nodes, deps] = await Promise.all([api("GET", "/nodes"), api("GET", "/deployments")]);
      state.nodes = nodes;
      state.deps = deps;
      renderSummary();
      if (state.view === "nodes") renderNodes();
      if (state.view === "deployments") renderDeployments();
      if (state.view === "deployment" && state.depId) {
        const id = state.depId;
        try {
          const [d, events] = await Promise.all([
            api("GET", `/deployments/${encodeURIComponent(id)}`),
            api("GET", `/events?deployment=${encodeURIComponent(id)}&limit=50`),
          ]);
          if (state.depId === id) {
            renderDetail(d);
            renderEvents($("#dep-events tbody"), events, { withDeployment: false });
            openLogs();
          }
        } catch (err) {
          if (err.status === 404) {
            $("#dep-reason").hidden = false;
            $("#dep-reason").textContent = `Deployment ${id} does not exist (any more).`;
            $("#dep-spec").replaceChildren();
            $("#jobs-table tbody").replaceChildren();
            $("#dep-actions").replaceChildren();
            $("#dep-state").replaceChildren();
          } else throw err;
        }
      }
      if (state.view === "experiments" || state.experiments !== null) await probeExperiments();
      if (state.view === "experiments") renderExperiments();
      if (state.view === "events") {
        const events = await api("GET", "/events?limit=200");
        const f = $("#event-filter").value.trim().toLowerCase();
        const shown = f ? events.filter((e) => [e.kind, e.deployment_id, e.node_id, e.message]
          .some((v) => v && String(v).toLowerCase().includes(f))) : events;
        renderEvents($("#events-table tbody"), shown);
      }
      banner("");
      $("#updated").textContent = `updated ${new Date().toLocaleTimeString([], { hour12: false })}`;
    } catch (err) {
      if (err.status !== 401) banner(`${err.message}${err.status === 0 ? " (retrying)" : ""}`);
    } finally {
      state.busy = false;
    }
  }

  // ------------------------------------------------------------------ actions
  function confirmDialog(text, yesLabel) {
    const dialog = $("#confirm-dialog");
    $("#confirm-text").textContent = text;
    $("#confirm-yes").textContent = yesLabel;
    dialog.returnValue = "";
    dialog.showModal();
    return new Promise((resolve) => {
      dialog.addEventListener("close", () => resolve(dialog.returnValue === "yes"), { once: true });
    });
  }

  async function act(action, id) {
    const dep = state.deps.find((d) => d.id === id);
    try {
      if (action === "logs") {
        window.location.hash = `deployment/${encodeURIComponent(id)}`;
        return;
      }
      if (action === "edit") {
        const current = await api("GET", `/deployments/${encodeURIComponent(id)}`);
        openForm(current);
        return;
      }
      if (action === "stop" || action === "start") {
        await api("PATCH", `/deployments/${encodeURIComponent(id)}`,
          { desired_state: action === "stop" ? "stopped" : "running" });
      } else if (action === "delete") {
        const replicas = dep ? (dep.jobs || []).length : 0;
        if (!await confirmDialog(`Delete deployment ${id}? Its ${replicas} replica(s) will be stopped.`, "Delete")) return;
        await api("DELETE", `/deployments/${encodeURIComponent(id)}`);
        if (state.view === "deployment") {
          window.location.hash = "deployments";
          return;
        }
      }
      banner("");
    } catch (err) {
      banner(`${action} ${id}: ${err.message}`);
    }
    refresh();
  }

  document.addEventListener("click", (ev) => {
    const button = ev.target.closest("button[data-action]");
    if (!button) return;
    ev.preventDefault();
    act(button.dataset.action, button.dataset.dep);
  });

  // ------------------------------------------------------------------ the deployment form
  const FORM_FIELDS = ["name", "config.command", "kind", "config.image", "node_group", "replicas",
    "capacity_requests", "config.env", "config.env_name", "restart_policy", "restart_policy.type",
    "restart_policy.backoff_seconds", "restart_policy.max_restarts", "desired_state"];

  function fieldFor(path, message) {
    if (!path) return "";
    let best = "";
    for (const f of FORM_FIELDS) {
      if ((path === f || path.startsWith(`${f}.`)) && f.length > best.length) best = f;
    }
    if (!best) {
      const missing = /'([a-z_]+)'/.exec(message || "");
      if (missing && FORM_FIELDS.includes(`${path}.${missing[1]}`)) best = `${path}.${missing[1]}`;
    }
    return best;
  }

  function clearErrors() {
    for (const p of $$("#dep-form [data-error-for]")) { p.hidden = true; p.textContent = ""; }
    for (const i of $$("#dep-form .invalid")) i.classList.remove("invalid");
  }

  function showError(path, message) {
    const field = fieldFor(path, message);
    const target = $$("#dep-form [data-error-for]").find((p) => p.dataset.errorFor === field);
    const text = field || !path ? message : `${path}: ${message}`;
    const box = target || $("#dep-form .form-error");
    box.textContent = box.hidden || !box.textContent ? text : `${box.textContent}; ${text}`;
    box.hidden = false;
    const input = field && $$("#dep-form [name]").find((i) => i.name === field);
    if (input) input.classList.add("invalid");
  }

  function parsePairs(text, what, numeric) {
    const out = {};
    const parts = text.split(numeric ? /[\n,]/ : /\n/).map((s) => s.trim()).filter(Boolean);
    for (const part of parts) {
      const eq = part.indexOf("=");
      if (eq <= 0) throw new Error(`'${part}' is not ${what} (write NAME=${numeric ? "amount" : "value"})`);
      const key = part.slice(0, eq).trim(), raw = part.slice(eq + 1).trim();
      if (numeric) {
        const n = Number(raw);
        if (raw === "" || !Number.isFinite(n)) throw new Error(`${key}: '${raw}' is not a number`);
        out[key] = n;
      } else out[key] = raw;
    }
    return out;
  }

  function formValue(name) {
    return $$("#dep-form [name]").find((i) => i.name === name).value.trim();
  }

  // The request body from the form; client-side problems as [field, message] pairs.
  function formBody() {
    const problems = [];
    const base = state.editing || {};
    const config = { ...(base.config || {}) };
    const commandText = formValue("config.command");
    delete config.command;
    if (!commandText) {
      // a docker job may run its image's own command
      if (formValue("kind") !== "docker") problems.push(["config.command", "a command is required"]);
    } else if (commandText.startsWith("[")) {
      try {
        const argv = JSON.parse(commandText);
        if (!Array.isArray(argv)) throw new Error("not a list");
        config.command = argv;
      } catch (err) {
        problems.push(["config.command", `not a JSON list of arguments (${err.message}); or write a plain shell command`]);
      }
    } else config.command = commandText;
    try { config.env = parsePairs(formValue("config.env"), "KEY=value", false); } catch (err) { problems.push(["config.env", err.message]); }
    config.image = formValue("config.image") || null;
    config.env_name = formValue("config.env_name") || null;
    const body = { name: formValue("name"), kind: formValue("kind"), desired_state: formValue("desired_state"),
      node_group: formValue("node_group") || null, config };
    if (!body.name) problems.push(["name", "a name is required"]);
    const replicas = formValue("replicas");
    if (replicas !== "") {
      const r = Number(replicas);
      if (!Number.isInteger(r)) problems.push(["replicas", `'${replicas}' is not a whole number`]);
      else body.replicas = r;
    }
    try { body.capacity_requests = parsePairs(formValue("capacity_requests"), "CLASS=amount", true); } catch (err) { problems.push(["capacity_requests", err.message]); }
    const policy = { ...(base.restart_policy || {}), type: formValue("restart_policy.type") };
    for (const [key, integer] of [["backoff_seconds", false], ["max_restarts", true]]) {
      const raw = formValue(`restart_policy.${key}`);
      delete policy[key];
      if (raw === "") continue;
      const n = Number(raw);
      if (!Number.isFinite(n) || (integer && !Number.isInteger(n))) problems.push([`restart_policy.${key}`, `'${raw}' is not a ${integer ? "whole " : ""}number`]);
      else policy[key] = n;
    }
    body.restart_policy = policy;
    return { body, problems };
  }

  function setField(name, value) {
    $$("#dep-form [name]").find((i) => i.name === name).value = value === null || value === undefined ? "" : String(value);
  }

  function openForm(dep) {
    state.editing = dep || null;
    const form = $("#dep-form");
    form.reset();
    clearErrors();
    $("#dep-form-title").textContent = dep ? `Edit ${dep.id}` : "New deployment";
    $("#dep-submit").textContent = dep ? "Save" : "Create";
    const nameInput = $("#f-name");
    nameInput.readOnly = Boolean(dep);
    if (dep) {
      const cfg = dep.config || {}, rp = dep.restart_policy || {};
      setField("name", dep.id);
      setField("config.command", commandText(cfg.command));
      setField("kind", dep.kind || "exec");
      setField("config.image", cfg.image);
      setField("node_group", dep.node_group);
      setField("replicas", dep.replicas ?? 1);
      setField("capacity_requests", Object.entries(dep.capacity_requests || {}).map(([k, v]) => `${k}=${v}`).join(", "));
      setField("config.env", Object.entries(cfg.env || {}).map(([k, v]) => `${k}=${v}`).join("\n"));
      setField("config.env_name", cfg.env_name);
      setField("restart_policy.type", rp.type || "on-failure");
      setField("restart_policy.backoff_seconds", rp.backoff_seconds);
      setField("restart_policy.max_restarts", rp.max_restarts);
      setField("desired_state", dep.desired_state || "running");
    }
    $("#dep-dialog").showModal();
    (dep ? $("#f-command") : nameInput).focus();
  }

  async function submitForm(ev) {
    ev.preventDefault();
    clearErrors();
    const { body, problems } = formBody();
    if (problems.length) {
      for (const [field, message] of problems) showError(field, message);
      return;
    }
    const submit = $("#dep-submit");
    submit.disabled = true;
    try {
      const editing = state.editing;
      const { name, ...changes } = body; // PATCH: the path names it
      const saved = editing
        ? await api("PATCH", `/deployments/${encodeURIComponent(editing.id)}`, changes)
        : await api("POST", "/deployments", body);
      $("#dep-dialog").close();
      state.editing = null;
      window.location.hash = `deployment/${encodeURIComponent(saved.id)}`;
      refresh();
    } catch (err) {
      const fields = err.body && err.body.fields;
      if (err.status === 409) showError("name", err.message);
      else if (fields && fields.length) for (const f of fields) showError(f.field, f.message);
      else showError("", err.message);
    } finally {
      submit.disabled = false;
    }
  }

  // ------------------------------------------------------------------ start
  function start() {
    if (/[?&]token=/.test(window.location.search)) {
      // The cookie holds the token now; keep it out of the address bar and history.
      window.history.replaceState(null, "", `/ui${window.location.hash}`);
    }
    $("#new-dep").addEventListener("click", () => openForm(null));
    $("#dep-cancel").addEventListener("click", () => { $("#dep-dialog").close(); state.editing = null; });
    $("#dep-form").addEventListener("submit", submitForm);
    $("#dep-filter").addEventListener("input", renderDeployments);
    $("#event-filter").addEventListener("input", () => refresh());
    for (const id of ["#log-replica", "#log-tail", "#log-follow"]) $(id).addEventListener("change", () => openLogs());
    $("#log-reload").addEventListener("click", () => openLogs(true));
    $("#log-wrap").addEventListener("change", (ev) => $("#log-box").classList.toggle("wrap", ev.target.checked));
    window.addEventListener("hashchange", route);
    setInterval(() => {
      if ($("#autorefresh").checked && document.visibilityState !== "hidden") refresh();
    }, REFRESH_MS);
    probeExperiments().then(route);
  }

  start();
})();
