// Local alarm console: polls the gateway every second, beeps while an alarm is open.
"use strict";
let audio = null;
let openCount = 0;
const staffKey = "vigil.staff";

document.getElementById("sound").addEventListener("click", () => {
  audio = audio || new (window.AudioContext || window.webkitAudioContext)();
  audio.resume();
  document.getElementById("sound").textContent = "Sound on";
});

function beep() {
  if (!audio || openCount === 0) return;
  const osc = audio.createOscillator();
  const gain = audio.createGain();
  osc.frequency.value = 880;
  gain.gain.value = 0.2;
  osc.connect(gain).connect(audio.destination);
  osc.start();
  osc.stop(audio.currentTime + 0.25);
}
setInterval(beep, 1500);

function cell(row, text, cls) {
  const td = row.insertCell();
  td.textContent = text;
  if (cls) td.className = cls;
  return td;
}

async function acknowledge(a) {
  const by = prompt("Acknowledged by (your name):", localStorage.getItem(staffKey) || "");
  if (!by) return;
  localStorage.setItem(staffKey, by);
  const r = await fetch(`/api/alarms/${encodeURIComponent(a.device)}/${a.boot_id}/${a.seq}/ack`, {
    method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ by }),
  });
  if (!r.ok) alert((await r.json()).error);
  refresh();
}

function render(view) {
  document.getElementById("site").textContent = `— ${view.site} / ${view.gateway}`;
  const link = document.getElementById("link");
  link.className = "link " + (view.link.uplink_connected ? "up" : "down");
  link.textContent = view.link.uplink_connected
    ? "Server link up"
    : `Server link DOWN — ${view.link.spool_frames} frames waiting`;
  const tbody = document.querySelector("#alarms tbody");
  tbody.replaceChildren();
  openCount = 0;
  for (const a of view.alarms) {
    const open = !a.acked_by;
    if (open) openCount++;
    const row = tbody.insertRow();
    row.className = `${open ? "open" : "acked"} ${a.kind}`;
    cell(row, new Date(a.received_ms).toLocaleString());
    cell(row, a.kind.toUpperCase() + " — " + a.detail + (a.cancelled_by_resident ? " (cancelled by resident)" : ""));
    cell(row, a.resident || a.device);
    cell(row, a.room || "");
    cell(row, a.reached_server ? "reached server" : "waiting for link", a.reached_server ? "delivered" : "pending");
    const td = row.insertCell();
    if (open) {
      const b = document.createElement("button");
      b.textContent = "Acknowledge";
      b.addEventListener("click", () => acknowledge(a));
      td.appendChild(b);
    } else {
      td.textContent = `${a.acked_by}, ${new Date(a.acked_ms).toLocaleTimeString()}`;
    }
  }
  document.getElementById("alarms").hidden = view.alarms.length === 0;
  document.getElementById("empty").hidden = view.alarms.length !== 0;
}

async function refresh() {
  try {
    const r = await fetch("/api/alarms", { cache: "no-store" });
    render(await r.json());
  } catch (e) {
    document.getElementById("link").textContent = "Gateway not answering";
  }
}
refresh();
setInterval(refresh, 1000);
