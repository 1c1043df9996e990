// The console's live view: polls /console/status.json, refreshes every element with a
// `data-figure`, and draws lag and throughput of the last few minutes into #chart.
// No framework and no build step.
"use strict";

(function () {
  const POLL_MS = 2000;
  const KEEP = 150; // samples: five minutes at one every two seconds
  const samples = [];
  let previous = null;

  function set(name, value) {
    for (const el of document.querySelectorAll(`[data-figure="${CSS.escape(name)}"]`)) {
      el.textContent = String(value);
    }
  }

  function checkpointSum(status) {
    return status.projectors.reduce((sum, p) => sum + (p.position || 0), 0);
  }

  function refresh(status) {
    set("head", status.head);
    for (const p of status.projectors) {
      set(`projector.${p.name}.position`, p.position === null ? "none" : p.position);
      set(`projector.${p.name}.lag`, p.lag);
      set(`projector.${p.name}.state`, p.stopped ? "stopped" : "running");
    }
    if (status.read_model.Ok) {
      for (const s of status.read_model.Ok.states) {
        set(`${s.table}.${s.column}.${s.value}`, s.rows);
      }
    }
    set("scrub.eligible", status.scrub.eligible === null ? "unknown" : status.scrub.eligible);
    set(
      "scrub.memberships.eligible",
      status.membership_scrub.eligible === null ? "unknown" : status.membership_scrub.eligible,
    );
    set(
      "scrub.address_changes.eligible",
      status.address_change_scrub.eligible === null
        ? "unknown"
        : status.address_change_scrub.eligible,
    );
    set(
      "scrub.subscriptions.eligible",
      status.subscription_scrub.eligible === null ? "unknown" : status.subscription_scrub.eligible,
    );
    if (status.civishare.Ok) {
      for (const p of status.civishare.Ok.peers) {
        set(`civishare.${p.node}.undelivered`, p.undelivered);
        set(`civishare.${p.node}.failed`, p.failed);
        for (const [received, n] of p.received) {
          set(`civishare.${p.node}.${received}`, n);
        }
      }
    }
    set("kurrentdb.subscriptions", status.kurrentdb.subscriptions);
    set("kurrentdb.max_lag", status.kurrentdb.max_lag);
    set("sequence.collisions", status.sequences.collisions);

    const now = Date.parse(status.at);
    const lag = status.projectors.reduce((sum, p) => sum + p.lag, 0);
    let appends = null;
    let projected = null;
    if (previous) {
      const seconds = (now - previous.at) / 1000;
      if (seconds > 0) {
        appends = Math.max(0, (status.head - previous.head) / seconds);
        projected = Math.max(0, (checkpointSum(status) - previous.checkpoints) / seconds);
        set("rate.appends", appends.toFixed(1));
        set("rate.projection", projected.toFixed(1));
      }
    }
    previous = { at: now, head: status.head, checkpoints: checkpointSum(status) };
    samples.push({ lag, appends, projected });
    while (samples.length > KEEP) samples.shift();
    draw();
  }

  function line(values, max, cls) {
    const chart = document.getElementById("chart");
    const width = 600, height = 150;
    const step = width / (KEEP - 1);
    const points = [];
    values.forEach((v, i) => {
      if (v !== null) {
        points.push(`${(i * step).toFixed(1)},${(height - (v / max) * (height - 10) + 5).toFixed(1)}`);
      }
    });
    if (points.length < 2) return;
    const poly = document.createElementNS("http://www.w3.org/2000/svg", "polyline");
    poly.setAttribute("points", points.join(" "));
    poly.setAttribute("class", cls);
    chart.appendChild(poly);
  }

  function draw() {
    const chart = document.getElementById("chart");
    if (!chart) return;
    chart.replaceChildren();
    const series = {
      lag: samples.map((s) => s.lag),
      appends: samples.map((s) => s.appends),
      projection: samples.map((s) => s.projected),
    };
    const max = Math.max(1, ...Object.values(series).flat().filter((v) => v !== null));
    for (const [cls, values] of Object.entries(series)) line(values, max, cls);
    const label = document.createElementNS("http://www.w3.org/2000/svg", "text");
    label.setAttribute("x", "4");
    label.setAttribute("y", "12");
    label.textContent = `max ${max.toFixed(0)}`;
    chart.appendChild(label);
    chart.dataset.samples = String(samples.length);
  }

  async function poll() {
    try {
      const response = await fetch("/console/status.json", { credentials: "same-origin" });
      if (response.status === 401) {
        window.location.assign("/login");
        return;
      }
      if (response.ok) refresh(await response.json());
    } catch (e) {
      // The server is restarting or the network is away: the next poll tries again.
    }
    setTimeout(poll, POLL_MS);
  }

  if (document.getElementById("chart")) poll();
})();
