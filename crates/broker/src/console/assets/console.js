// The mqgate operator console. Plain JavaScript, no libraries: the page is served by the
// broker itself. Every change goes through POST /console/api/action with the CSRF token.
"use strict";

const csrf = document.querySelector('meta[name="csrf-token"]').content;
const $ = (id) => document.getElementById(id);
const SVG = "http://www.w3.org/2000/svg";
let history = [];

function toast(text) {
  const t = $("toast");
  t.textContent = text;
  t.className = text ? "show" : "";
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { t.textContent = ""; t.className = ""; }, 6000);
}

function signedOut(response) {
  if (response.status === 401) {
    window.location.assign("/console/login");
    return true;
  }
  return false;
}

// One OpenAPI action as the signed-in AccessKey; resolves to its answer, rejects with its
// error message.
async function act(params) {
  const response = await fetch("/console/api/action", {
    method: "POST",
    headers: { "x-csrf-token": csrf, "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams(params).toString(),
    credentials: "same-origin",
  });
  if (signedOut(response)) throw new Error("signed out");
  const body = await response.json();
  if (!response.ok) throw new Error(body.Code + ": " + body.Message);
  return body;
}

function number(n) {
  return typeof n === "number" ? n.toLocaleString("en") : "–";
}

// ---- overview ----

function chart(svg, series) {
  while (svg.firstChild) svg.removeChild(svg.firstChild);
  const w = 300, h = 80, top = 12;
  let max = 1;
  for (const values of series) for (const v of values) if (v > max) max = v;
  const grid = document.createElementNS(SVG, "line");
  grid.setAttribute("class", "grid");
  grid.setAttribute("x1", 0); grid.setAttribute("x2", w);
  grid.setAttribute("y1", top); grid.setAttribute("y2", top);
  svg.appendChild(grid);
  const label = document.createElementNS(SVG, "text");
  label.setAttribute("x", 2); label.setAttribute("y", 9);
  label.textContent = "max " + number(Math.round(max * 10) / 10);
  svg.appendChild(label);
  series.forEach((values, index) => {
    if (values.length < 2) return;
    const step = w / (300 - 1);
    const start = w - step * (values.length - 1);
    const points = values.map((v, i) =>
      (start + i * step).toFixed(1) + "," + (h - 2 - (v / max) * (h - top - 2)).toFixed(1));
    const line = document.createElementNS(SVG, "polyline");
    line.setAttribute("class", index ? "line second" : "line");
    line.setAttribute("points", points.join(" "));
    svg.appendChild(line);
  });
}

function showSample(s) {
  $("m-online").textContent = number(s.online);
  $("m-connects").textContent = number(s.connectsPerS);
  $("m-in").textContent = number(s.inPerS);
  $("m-out").textContent = number(s.outPerS);
  $("m-queued").textContent = number(s.queued);
  $("m-dropped").textContent = number(s.dropped);
  $("m-refused").textContent = number(s.refused);
  $("m-store").textContent = s.store
    ? number(s.store.messages) + " msgs · " + number(s.store.sessions) + " sessions"
    : "not answering";
  $("m-bridge").textContent = s.bridge
    ? (s.bridge.healthy ? "healthy" : "down: " + (s.bridge.error || "consumers not running"))
      + " · " + number(s.bridge.buffered) + " buffered"
    : "not configured";
  $("m-cloud").textContent = s.cloud
    ? number(s.cloud.consumers) + " consumers on " + number(s.cloud.connections)
      + " connections · " + s.cloud.queues.map((q) => q.name + " " + number(q.depth)).join(", ")
    : "off";
}

function drawCharts() {
  chart($("chart-online"), [history.map((s) => s.online)]);
  chart($("chart-messages"), [history.map((s) => s.inPerS), history.map((s) => s.outPerS)]);
  chart($("chart-queued"), [history.map((s) => s.queued)]);
}

async function loadOverview() {
  const response = await fetch("/console/api/overview", { credentials: "same-origin" });
  if (signedOut(response) || !response.ok) return;
  history = (await response.json()).history;
  if (history.length) showSample(history[history.length - 1]);
  drawCharts();
}

// ---- live feed ----

let feed = null;

function connectFeed() {
  if (feed) feed.close();
  const group = $("event-group").value.trim();
  const url = "/console/api/events" + (group ? "?group=" + encodeURIComponent(group) : "");
  feed = new EventSource(url);
  feed.onopen = () => { $("live").textContent = "live"; $("live").className = "badge on"; };
  feed.onerror = () => {
    $("live").textContent = "reconnecting…"; $("live").className = "badge";
    // A feed that ends because the session did: the next page load asks to sign in.
    fetch("/console/api/overview", { credentials: "same-origin" }).then(signedOut, () => {});
  };
  feed.addEventListener("sample", (e) => {
    const s = JSON.parse(e.data);
    history.push(s);
    if (history.length > 300) history.shift();
    showSample(s);
    drawCharts();
  });
  feed.addEventListener("status", (e) => {
    const ev = JSON.parse(e.data);
    const li = document.createElement("li");
    li.className = "ev-" + ev.eventType;
    li.textContent = new Date(ev.time).toLocaleTimeString() + "  " + ev.eventType + "  "
      + ev.clientId + "  " + ev.clientIp + "  " + ev.channelId;
    const list = $("event-list");
    list.insertBefore(li, list.firstChild);
    while (list.children.length > 200) list.removeChild(list.lastChild);
    scheduleClients();
  });
  feed.addEventListener("lagged", (e) => toast(e.data + " status events were missed"));
}

// ---- clients ----

let clientTimer = null;
function scheduleClients() {
  clearTimeout(clientTimer);
  clientTimer = setTimeout(loadClients, 150);
}

function cell(row, text, className) {
  const td = document.createElement("td");
  td.textContent = text === null || text === undefined ? "–" : String(text);
  if (className) td.className = className;
  row.appendChild(td);
  return td;
}

async function loadClients() {
  const params = new URLSearchParams({ q: $("client-q").value.trim(), group: $("client-group").value.trim() });
  const response = await fetch("/console/api/clients?" + params, { credentials: "same-origin" });
  if (signedOut(response) || !response.ok) return;
  const body = await response.json();
  const tbody = $("client-table").querySelector("tbody");
  tbody.textContent = "";
  for (const c of body.clients) {
    const tr = document.createElement("tr");
    tr.dataset.client = c.clientId;
    const th = document.createElement("th");
    th.scope = "row";
    th.textContent = c.clientId;
    tr.appendChild(th);
    cell(tr, c.online ? "online" : "offline" + (c.persistent ? " (persistent)" : ""),
      c.online ? "state-online" : "state-offline");
    cell(tr, c.channelId);
    cell(tr, c.address);
    cell(tr, c.login);
    cell(tr, c.keepAlive === null ? null : c.keepAlive + " s");
    cell(tr, c.subscriptions.map((s) => s.filter + " (QoS " + s.qos + ")").join(", ") || "none");
    cell(tr, c.queued);
    const td = cell(tr, "");
    td.textContent = "";
    const t = document.createElement("button");
    t.type = "button";
    t.className = "timeline";
    t.textContent = "Timeline";
    t.setAttribute("aria-label", "Timeline of " + c.clientId);
    t.addEventListener("click", () => showTimeline(c.clientId));
    td.appendChild(t);
    if (c.online) {
      const b = document.createElement("button");
      b.type = "button";
      b.className = "close";
      b.textContent = "Close connection";
      b.setAttribute("aria-label", "Close the connection of " + c.clientId);
      b.addEventListener("click", async () => {
        try {
          const answer = await act({ Action: "CloseConnection", ClientId: c.clientId });
          toast(answer.Message + ": " + c.clientId);
        } catch (e) { toast(e.message); }
        scheduleClients();
      });
      td.appendChild(b);
    }
    tbody.appendChild(tr);
  }
  $("client-count").textContent = body.total + " client(s)" + (body.total > body.clients.length ? ", " + body.clients.length + " shown" : "");
}

// ---- a client's timeline (message trace) ----

const TIMELINE_DAYS = 3;

// The client's connects, closes and messages of the last days, newest first, from the
// message trace actions of the API.
async function showTimeline(clientId) {
  const section = $("timeline");
  section.hidden = false;
  $("h-timeline").textContent = "Timeline of " + clientId;
  const note = $("timeline-note");
  const list = $("timeline-list");
  note.textContent = "Loading…";
  list.textContent = "";
  const end = Date.now();
  const query = {
    ClientId: clientId, MqttRegionId: "local", BeginTime: String(end - TIMELINE_DAYS * 86400000),
    EndTime: String(end), CurrentPage: "1", PageSize: "100", Reverse: "true",
  };
  try {
    const [device, messages] = await Promise.all([
      act(Object.assign({ Action: "QueryMqttTraceDevice" }, query)),
      act(Object.assign({ Action: "QueryMqttTraceMessageOfClient" }, query)),
    ]);
    const entries = device.DeviceInfoList.map((e) => ({
      time: e.Time, action: e.Action, info: e.ActionInfo, detail: e.ChannelId ? "channel " + e.ChannelId : "",
    })).concat(messages.MessageOfClientList.map((e) => ({
      time: e.Time, action: e.Action, info: e.ActionInfo, detail: "message " + e.MsgId,
    })));
    // `yyyy-MM-dd HH:mm:ss.SSS` sorts as text.
    entries.sort((a, b) => (a.time < b.time ? 1 : a.time > b.time ? -1 : 0));
    const shown = entries.slice(0, 100);
    const more = device.Total + messages.Total > shown.length;
    note.textContent = shown.length
      ? "Last " + TIMELINE_DAYS + " days, newest first (UTC)" + (more ? ", the latest " + shown.length + " shown" : "") + "."
      : "Nothing recorded for this client in the last " + TIMELINE_DAYS + " days.";
    for (const e of shown) {
      const li = document.createElement("li");
      li.className = "tl-" + e.action;
      const time = document.createElement("time");
      time.textContent = e.time;
      const action = document.createElement("strong");
      action.textContent = e.action;
      li.append(time, "  ", action, "  " + e.info + (e.detail ? "  (" + e.detail + ")" : ""));
      list.appendChild(li);
    }
  } catch (e) {
    note.textContent = e.message;
  }
  section.scrollIntoView({ block: "start" });
  $("h-timeline").focus({ preventScroll: true });
}

// ---- groups ----

async function loadGroups() {
  try {
    const answer = await act({ Action: "ListGroupId" });
    const list = $("group-list");
    list.textContent = "";
    for (const g of answer.Data) {
      const li = document.createElement("li");
      const name = document.createElement("span");
      name.textContent = g.GroupId;
      li.appendChild(name);
      const b = document.createElement("button");
      b.type = "button";
      b.className = "secondary";
      b.textContent = "Delete";
      b.setAttribute("aria-label", "Delete group " + g.GroupId);
      b.addEventListener("click", async () => {
        if (!window.confirm("Delete group " + g.GroupId + "? Its clients can no longer connect.")) return;
        try { await act({ Action: "DeleteGroupId", GroupId: g.GroupId }); toast("deleted " + g.GroupId); }
        catch (e) { toast(e.message); }
        loadGroups();
      });
      li.appendChild(b);
      list.appendChild(li);
    }
  } catch (e) { toast(e.message); }
}

// ---- tokens ----

function tokenOut(text) { $("token-out").textContent = text; }

async function applyToken(event) {
  event.preventDefault();
  const minutes = Math.max(2, Number($("token-minutes").value) || 60);
  try {
    const answer = await act({
      Action: "ApplyToken",
      Resources: $("token-resources").value,
      Actions: $("token-actions").value,
      ExpireTime: String(Date.now() + minutes * 60000),
    });
    $("token-value").value = answer.Token;
    tokenOut("Token: " + answer.Token);
  } catch (e) { tokenOut(e.message); }
}

async function queryToken(event) {
  event.preventDefault();
  try {
    const answer = await act({ Action: "QueryToken", Token: $("token-value").value });
    tokenOut(answer.TokenStatus ? "Token status: valid" : "Token status: invalid");
  } catch (e) { tokenOut(e.message); }
}

async function revokeToken() {
  try {
    await act({ Action: "RevokeToken", Token: $("token-value").value });
    tokenOut("Token revoked");
  } catch (e) { tokenOut(e.message); }
}

// ---- device credentials ----

function showCredential(c) {
  const out = $("device-out");
  out.textContent = "";
  for (const [k, v] of [["Client id", c.ClientId], ["DeviceAccessKeyId", c.DeviceAccessKeyId], ["DeviceAccessKeySecret", c.DeviceAccessKeySecret]]) {
    const dt = document.createElement("dt"); dt.textContent = k;
    const dd = document.createElement("dd"); dd.textContent = v;
    dd.id = "device-" + k.replace(/ /g, "-").toLowerCase();
    out.appendChild(dt); out.appendChild(dd);
  }
}

async function device(action) {
  const clientId = $("device-client").value.trim();
  try {
    const answer = await act({ Action: action, ClientId: clientId });
    if (answer.DeviceCredential) showCredential(answer.DeviceCredential);
    else { $("device-out").textContent = "Unregistered " + clientId; }
  } catch (e) { $("device-out").textContent = e.message; }
}

async function listDevices(event) {
  event.preventDefault();
  try {
    const answer = await act({ Action: "ListDeviceCredentialClientId", GroupId: $("device-group").value.trim() });
    const list = $("device-list");
    list.textContent = "";
    for (const id of answer.DeviceCredentialClientIdList.ClientIdList) {
      const li = document.createElement("li");
      li.textContent = id;
      list.appendChild(li);
    }
    if (!list.children.length) list.textContent = "none";
  } catch (e) { toast(e.message); }
}

// ---- wiring ----

document.addEventListener("DOMContentLoaded", () => {
  $("client-search").addEventListener("submit", (e) => { e.preventDefault(); loadClients(); });
  $("event-filter").addEventListener("submit", (e) => { e.preventDefault(); $("event-list").textContent = ""; connectFeed(); });
  $("group-create").addEventListener("submit", async (e) => {
    e.preventDefault();
    try { await act({ Action: "CreateGroupId", GroupId: $("group-id").value.trim() }); toast("created"); }
    catch (err) { toast(err.message); }
    loadGroups();
  });
  $("token-apply").addEventListener("submit", applyToken);
  $("token-check").addEventListener("submit", queryToken);
  $("token-revoke").addEventListener("click", revokeToken);
  $("device-form").addEventListener("submit", (e) => { e.preventDefault(); device("RegisterDeviceCredential"); });
  $("device-refresh").addEventListener("click", () => device("RefreshDeviceCredential"));
  $("device-unregister").addEventListener("click", () => device("UnRegisterDeviceCredential"));
  $("device-list-form").addEventListener("submit", listDevices);
  loadOverview();
  loadClients();
  loadGroups();
  connectFeed();
  setInterval(loadClients, 5000);
});
