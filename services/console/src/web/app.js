// The console's page script: plain JavaScript, no build step, no dependencies.
//
// Stable hooks for browser tests (WebDriver):
//   #status-broker, #status-account, #status-transaction, #status-statement
//                                                           data-state="up" | "down"
//   #open-form, #open-owner, #open-submit                   open an account
//   #tx-form, #tx-account (select of account ids), #tx-kind ("deposit" | "withdrawal"),
//   #tx-amount, #tx-submit                                  deposit or withdraw
//   #form-result                                            aria-live result, data-state="ok" | "error"
//   #accounts-table  tr[data-testid="account-row"][data-account-id]
//       [data-testid="account-owner"], [data-testid="account-balance"] (text "12.50", data-cents),
//       [data-testid="account-last-number"], button[data-testid="account-ledger-button"],
//       button[data-testid="account-statement-button"]
//   #ledger  tr[data-testid="ledger-row"][data-number][data-status], [data-testid="ledger-reason"]
//   #statement (data-account-id)  #statement-opening, #statement-closing (text "12.50",
//       data-cents), #statement-last-number;  tr[data-testid="statement-row"][data-number]
//       [data-outcome], [data-testid="statement-balance"] (data-cents), [data-testid="statement-reason"]
//   #timeline  li[data-testid="timeline-row"] with data-id, data-type (event type or "decision"),
//       data-account, data-number, data-decision;  li[data-testid="timeline-skipped"][data-skipped]
//   #broker-streams  tr[data-testid="consumer-row"][data-stream][data-consumer]
//       td[data-field="num_pending" | "num_ack_pending" | "num_redelivered" | ...]
//   #scenario-<slug> (slugs "failed-before-ack", "out-of-order", "slow-handler", "dead-client",
//       "crashed-replica", "duplicate-delivery", "replica-race"; data-mode "a" to "f", also in
//       the title): #scenario-run-<slug>,
//       #scenario-truth-<slug>, #scenario-naive-<slug>, #scenario-service-<slug> (data-cents),
//       #scenario-service-last-<slug>, #scenario-verdict-<slug> (data-state "running" | "done" |
//       "error", data-passed "true" | "false"), #scenario-takes-<slug>, #scenario-needs-<slug>
"use strict";

const TIMELINE_ROWS = 500;
const BROKER_REFRESH_MS = 2000;
const STATUS_REFRESH_MS = 5000;

const $ = (id) => document.getElementById(id);

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null) continue;
    if (name === "className") node.className = value;
    else node.setAttribute(name, String(value));
  }
  for (const child of children) {
    if (child === undefined || child === null) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

function cents(value) {
  if (typeof value !== "number") return "";
  const sign = value < 0 ? "-" : "";
  const abs = Math.abs(value);
  return `${sign}${Math.floor(abs / 100)}.${String(abs % 100).padStart(2, "0")}`;
}

function shortId(id) {
  return id ? String(id).slice(0, 8) : "";
}

function newKey() {
  if (window.crypto && typeof window.crypto.randomUUID === "function") {
    return window.crypto.randomUUID();
  }
  // crypto.randomUUID needs a secure context; getRandomValues does not.
  const bytes = new Uint8Array(16);
  window.crypto.getRandomValues(bytes);
  bytes[6] = (bytes[6] & 0x0f) | 0x40;
  bytes[8] = (bytes[8] & 0x3f) | 0x80;
  const hex = Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

async function api(method, path, body, headers) {
  const init = { method, headers: Object.assign({}, headers || {}) };
  if (body !== undefined) {
    init.headers["content-type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (err) {
    return { ok: false, status: 0, body: { error: "console_unreachable", message: "the console did not answer" } };
  }
  let parsed = null;
  try {
    parsed = await response.json();
  } catch (err) {
    parsed = null;
  }
  return { ok: response.ok, status: response.status, body: parsed };
}

function problem(result) {
  const body = result.body || {};
  return body.message || body.error || `HTTP ${result.status}`;
}

// ---------------------------------------------------------------------------------------------
// Status pills

function setPill(id, up, text) {
  const pill = $(id);
  pill.dataset.state = up ? "up" : "down";
  pill.querySelector(".pill-text").textContent = text;
}

async function refreshStatus() {
  const result = await api("GET", "/api/status");
  if (!result.ok || !result.body) {
    setPill("status-broker", false, "console unreachable");
    return;
  }
  const status = result.body;
  setPill("status-broker", status.broker.connected, status.broker.connected ? "connected" : "broker unreachable");
  const replicas = status.account_service || [];
  const ready = replicas.filter((r) => r.ready).length;
  setPill("status-account", ready > 0, `${ready} of ${replicas.length} ready`);
  const tx = status.transaction_service;
  setPill("status-transaction", tx.ready, tx.ready ? "ready" : (tx.problem || "not ready"));
  const st = status.statement_service;
  setPill("status-statement", st.ready, st.ready ? "ready" : (st.problem || "not ready"));
}

// ---------------------------------------------------------------------------------------------
// Accounts

const accounts = new Map(); // id -> account
let nextAfter = null;
let selectedLedger = null;
let selectedStatement = null;
const pendingRefresh = new Map();

function isScenario(account) {
  return account.owner.startsWith("scenario: ");
}

function accountRow(account) {
  const balance = el("td", { className: "num", "data-testid": "account-balance", "data-cents": account.balance }, cents(account.balance));
  const last = el("td", { className: "num", "data-testid": "account-last-number" }, account.last_transaction_number);
  const button = el("button", { type: "button", className: "secondary", "data-testid": "account-ledger-button",
    "aria-label": `Ledger of ${account.owner}` }, "Ledger");
  button.addEventListener("click", () => openLedger(account.id));
  const statement = el("button", { type: "button", className: "secondary", "data-testid": "account-statement-button",
    "aria-label": `Statement of ${account.owner}` }, "Statement");
  statement.addEventListener("click", () => openStatement(account.id));
  return el("tr", { "data-testid": "account-row", "data-account-id": account.id, id: `account-${account.id}`,
    className: isScenario(account) ? "scenario-account" : null },
    el("td", { "data-testid": "account-owner" }, account.owner),
    el("td", { className: "id", title: account.id }, account.id),
    balance, last, el("td", { className: "actions" }, button, statement));
}

function upsertAccount(account, flash) {
  accounts.set(account.id, account);
  const body = $("accounts-body");
  const row = accountRow(account);
  const existing = document.getElementById(`account-${account.id}`);
  if (existing) {
    existing.replaceWith(row);
  } else {
    // Keep id order, as the account service lists them.
    const after = Array.from(body.children).find((tr) => tr.dataset.accountId > account.id);
    body.insertBefore(row, after || null);
    addAccountOption(account);
  }
  if (flash) {
    row.classList.add("flash");
    setTimeout(() => row.classList.remove("flash"), 1200);
  }
}

function addAccountOption(account) {
  if (isScenario(account)) return; // their numbers belong to the scenario
  const select = $("tx-account");
  if (select.querySelector(`option[value="${account.id}"]`)) return;
  select.append(el("option", { value: account.id }, `${account.owner} (${shortId(account.id)})`));
}

async function loadAccounts(more) {
  const query = more && nextAfter ? `?limit=100&after=${encodeURIComponent(nextAfter)}` : "?limit=100";
  const result = await api("GET", `/api/accounts${query}`);
  if (!result.ok) {
    $("accounts-state").textContent = `Accounts cannot be listed: ${problem(result)}`;
    return;
  }
  $("accounts-state").textContent = "";
  for (const account of result.body.items || []) upsertAccount(account, false);
  nextAfter = result.body.next_after;
  $("accounts-more").hidden = !nextAfter;
}

function refreshAccountSoon(id) {
  if (!id || pendingRefresh.has(id)) return;
  pendingRefresh.set(id, setTimeout(async () => {
    pendingRefresh.delete(id);
    const result = await api("GET", `/api/accounts/${id}`);
    if (result.ok && result.body) upsertAccount(result.body, true);
    if (selectedLedger === id) loadLedger(id);
    if (selectedStatement === id) loadStatement(id);
  }, 150));
}

function showResult(ok, text) {
  const out = $("form-result");
  out.dataset.state = ok ? "ok" : "error";
  out.textContent = text;
}

async function onOpen(event) {
  event.preventDefault();
  const owner = $("open-owner").value.trim();
  if (!owner) {
    showResult(false, "Owner: enter 1 to 200 characters.");
    $("open-owner").focus();
    return;
  }
  $("open-submit").disabled = true;
  const result = await api("POST", "/api/accounts", { owner });
  $("open-submit").disabled = false;
  if (!result.ok) {
    showResult(false, `Account not opened: ${problem(result)}`);
    return;
  }
  upsertAccount(result.body, true);
  $("tx-account").value = result.body.id;
  $("open-owner").value = "";
  showResult(true, `Opened an account for ${result.body.owner} (${result.body.id}).`);
}

async function onTransaction(event) {
  event.preventDefault();
  const accountId = $("tx-account").value;
  const kind = $("tx-kind").value;
  const amount = $("tx-amount").value.trim();
  if (!accountId) {
    showResult(false, "Account: choose an account.");
    $("tx-account").focus();
    return;
  }
  if (!amount) {
    showResult(false, "Amount: enter an amount like 12.50.");
    $("tx-amount").focus();
    return;
  }
  $("tx-submit").disabled = true;
  // A new key per submission: a retry of this request by the network is applied once.
  const result = await api("POST", "/api/transactions", { account_id: accountId, kind, amount },
    { "Idempotency-Key": newKey() });
  $("tx-submit").disabled = false;
  if (!result.ok) {
    showResult(false, `${kind === "deposit" ? "Deposit" : "Withdrawal"} refused: ${problem(result)}`);
    return;
  }
  const tx = result.body;
  const owner = (accounts.get(accountId) || {}).owner || accountId;
  showResult(true, `${kind === "deposit" ? "Deposit" : "Withdrawal"} #${tx.number} of ${cents(tx.amount)} for ${owner}: ${tx.status}.`);
  $("tx-amount").value = "";
  refreshAccountSoon(accountId);
}

async function openLedger(id) {
  selectedLedger = id;
  const account = accounts.get(id);
  $("ledger").hidden = false;
  $("ledger").dataset.accountId = id;
  $("ledger-heading").textContent = `Ledger of ${account ? account.owner : id}`;
  await loadLedger(id);
  $("ledger-heading").focus();
}

async function loadLedger(id) {
  const result = await api("GET", `/api/accounts/${id}/ledger?limit=1000`);
  const body = $("ledger-body");
  if (!result.ok) {
    $("ledger-state").textContent = `The ledger cannot be read: ${problem(result)}`;
    return;
  }
  $("ledger-state").textContent = result.body.transaction_service_problem
    ? `Pending transactions unknown: ${result.body.transaction_service_problem}` : "";
  body.replaceChildren(...(result.body.items || []).map((item) => el("tr",
    { "data-testid": "ledger-row", "data-number": item.number, "data-status": item.status },
    el("td", { className: "num" }, item.number),
    el("td", {}, item.kind),
    el("td", { className: "num" }, cents(item.amount)),
    el("td", {}, el("span", { className: "badge", "data-kind": item.status }, item.status)),
    el("td", { className: "num" }, typeof item.balance_after === "number" ? cents(item.balance_after) : ""),
    el("td", { "data-testid": "ledger-reason" }, item.reason || ""))));
  if (!body.children.length) {
    body.append(el("tr", {}, el("td", { colspan: 6 }, "No transactions yet.")));
  }
}

async function openStatement(id) {
  selectedStatement = id;
  const account = accounts.get(id);
  $("statement").hidden = false;
  $("statement").dataset.accountId = id;
  $("statement-heading").textContent = `Statement of ${account ? account.owner : id}`;
  await loadStatement(id);
  $("statement-heading").focus();
}

function setAmount(id, value) {
  const cell = $(id);
  cell.dataset.cents = typeof value === "number" ? value : "";
  cell.textContent = typeof value === "number" ? cents(value) : "";
}

// The statement service's lines from number 1 (one page of up to 1000).
async function loadStatement(id) {
  const result = await api("GET", `/api/accounts/${id}/statement?limit=1000`);
  const body = $("statement-body");
  if (!result.ok) {
    $("statement-state").textContent = result.status === 404
      ? "The statement service has not seen this account opened yet."
      : `The statement cannot be read: ${problem(result)}`;
    body.replaceChildren();
    return;
  }
  const statement = result.body;
  $("statement-state").textContent = statement.next_from
    ? `Showing numbers 1 to ${statement.next_from - 1}; the statement goes on from ${statement.next_from}.` : "";
  setAmount("statement-opening", statement.opening_balance);
  setAmount("statement-closing", statement.closing_balance);
  $("statement-last-number").textContent = statement.last_transaction_number;
  body.replaceChildren(...(statement.lines || []).map((line) => el("tr",
    { "data-testid": "statement-row", "data-number": line.number, "data-outcome": line.outcome },
    el("td", { className: "num" }, line.number),
    el("td", {}, line.kind),
    el("td", { className: "num" }, cents(line.amount)),
    el("td", {}, el("span", { className: "badge", "data-kind": line.outcome }, line.outcome)),
    el("td", { className: "num", "data-testid": "statement-balance", "data-cents": line.balance_after }, cents(line.balance_after)),
    el("td", { "data-testid": "statement-reason" }, line.reason || ""),
    el("td", { title: line.occurred_at || "" }, line.occurred_at ? time(Date.parse(line.occurred_at)) : ""))));
  if (!body.children.length) {
    body.append(el("tr", {}, el("td", { colspan: 7 }, "No lines yet.")));
  }
}

// ---------------------------------------------------------------------------------------------
// Live timeline

function time(ms) {
  const at = new Date(ms);
  return at.toLocaleTimeString([], { hour12: false }) + "." + String(at.getMilliseconds()).padStart(3, "0");
}

function timelineRow(entry) {
  const badgeKind = entry.source === "decision" ? entry.decision : entry.type;
  const label = entry.source === "decision" ? `decision: ${entry.decision}` : entry.type;
  const row = el("li", {
    "data-testid": "timeline-row", "data-id": entry.id, "data-source": entry.source, "data-type": entry.type,
    "data-account": entry.account_id || "", "data-number": entry.number ?? "", "data-decision": entry.decision || "",
  },
    el("span", { className: "time" }, time(entry.at_ms)),
    el("span", {}, el("span", { className: "badge", "data-kind": badgeKind }, label)),
    el("span", { className: "id", title: entry.account_id || "" }, shortId(entry.account_id)),
    el("span", { className: "num" }, entry.number !== undefined && entry.number !== null ? `#${entry.number}` : ""),
    el("span", {}, entry.summary));
  applyFilter(row);
  return row;
}

function applyFilter(row) {
  const wanted = $("timeline-filter").value.trim();
  const showDecisions = $("timeline-decisions").checked;
  const hide = (wanted && !(row.dataset.account || "").startsWith(wanted))
    || (!showDecisions && row.dataset.source === "decision");
  row.classList.toggle("hidden", Boolean(hide));
}

function prepend(row) {
  const list = $("timeline");
  list.insertBefore(row, list.firstChild);
  while (list.children.length > TIMELINE_ROWS) list.removeChild(list.lastChild);
}

function onEntry(entry) {
  prepend(timelineRow(entry));
  if (!entry.account_id) return;
  if (entry.source === "event" && entry.type !== "TransactionCreated") {
    refreshAccountSoon(entry.account_id);
  } else if (entry.type === "TransactionCreated" && selectedLedger === entry.account_id) {
    loadLedger(entry.account_id);
  }
}

// The live feed is a WebSocket (/api/live), not an EventSource: browsers keep at most six
// HTTP/1.1 connections per host, and an event stream per tab would leave a seventh tab waiting.
let lastEntryId = null;
let liveRetryMs = 500;

function connectEvents() {
  const state = $("timeline-state");
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  const after = lastEntryId === null ? "" : `?after=${lastEntryId}`;
  const socket = new WebSocket(`${scheme}//${location.host}/api/live${after}`);
  socket.addEventListener("open", () => {
    liveRetryMs = 500;
    state.dataset.state = "up";
    state.textContent = "Live.";
  });
  socket.addEventListener("close", () => {
    state.dataset.state = "down";
    state.textContent = "The event stream is interrupted; reconnecting…";
    setTimeout(connectEvents, liveRetryMs);
    liveRetryMs = Math.min(liveRetryMs * 2, 10000);
  });
  socket.addEventListener("message", (event) => {
    let item;
    try {
      item = JSON.parse(event.data);
    } catch (err) {
      return; // A frame that does not parse is skipped; the next one comes anyway.
    }
    if (item.kind === "entry") {
      lastEntryId = item.entry.id;
      onEntry(item.entry);
    } else if (item.kind === "skipped") {
      prepend(el("li", { "data-testid": "timeline-skipped", "data-skipped": item.skipped },
        `This page fell behind: ${item.skipped} events skipped; continuing with the newest.`));
    }
  });
}

// ---------------------------------------------------------------------------------------------
// Broker panel

const CONSUMER_FIELDS = [
  ["num_pending", "Pending"],
  ["num_ack_pending", "Ack pending"],
  ["num_redelivered", "Redelivered"],
  ["num_waiting", "Waiting pulls"],
  ["delivered_stream_sequence", "Delivered seq"],
  ["ack_floor_stream_sequence", "Ack floor seq"],
];

function streamTable(stream) {
  const head = el("tr", {}, el("th", { scope: "col" }, "Consumer"), el("th", { scope: "col" }, "Filter"),
    ...CONSUMER_FIELDS.map(([, label]) => el("th", { scope: "col", className: "num" }, label)));
  const rows = stream.consumers.map((c) => el("tr",
    { "data-testid": "consumer-row", "data-stream": stream.name, "data-consumer": c.name, "data-durable": c.durable },
    el("th", { scope: "row", className: c.durable ? "" : "id" }, c.durable ? c.name : `${c.name} (ephemeral)`),
    el("td", {}, c.filter_subject),
    ...CONSUMER_FIELDS.map(([field]) => el("td", { className: "num", "data-field": field }, c[field]))));
  if (!rows.length) rows.push(el("tr", {}, el("td", { colspan: 2 + CONSUMER_FIELDS.length }, "No consumers.")));
  return el("div", { className: "stream", "data-testid": "stream", "data-stream": stream.name },
    el("h3", {}, `${stream.name} `, el("code", {}, stream.subjects.join(", "))),
    el("p", { className: "explain" }, `${stream.messages} messages, sequences ${stream.first_sequence} to ${stream.last_sequence}`),
    el("div", { className: "table-wrap" }, el("table", {}, el("thead", {}, head), el("tbody", {}, ...rows))));
}

async function refreshBroker() {
  const result = await api("GET", "/api/broker");
  const state = $("broker-state");
  if (!result.ok || !result.body) {
    state.textContent = "The console does not answer.";
    return;
  }
  const snapshot = result.body;
  if (!snapshot.connected) state.textContent = `Broker unreachable at ${snapshot.url}; the console keeps trying.`;
  else if (snapshot.error) state.textContent = `Last read failed: ${snapshot.error}`;
  else state.textContent = snapshot.at_ms ? `Read at ${time(snapshot.at_ms)}.` : "Reading…";
  $("broker-streams").replaceChildren(...snapshot.streams.map(streamTable));
}

// ---------------------------------------------------------------------------------------------
// Scenarios

function scenarioCard(info) {
  const slug = info.slug;
  const result = (id, label) => el("div", {}, el("span", { className: "label", id: `${id}-label` }, label),
    el("span", { className: "value", id, "aria-labelledby": `${id}-label` }, "–"));
  const button = el("button", { id: `scenario-run-${slug}`, type: "button" }, `Run “${info.title}”`);
  const card = el("article", { id: `scenario-${slug}`, className: "scenario", "data-testid": "scenario", "data-slug": slug,
    "data-mode": info.mode, "aria-labelledby": `scenario-title-${slug}` },
    el("h3", { id: `scenario-title-${slug}` }, `(${info.mode}) ${info.title}`),
    el("p", {}, info.summary),
    el("dl", {}, el("dt", {}, "Naive handler"), el("dd", {}, info.naive_expectation),
      el("dt", {}, "Account service"), el("dd", {}, info.service_expectation)),
    el("p", { id: `scenario-takes-${slug}`, className: "takes" }, `A run takes ${info.takes}.`),
    info.needs ? el("p", { id: `scenario-needs-${slug}`, className: "needs" }, `Needs ${info.needs}.`) : null,
    button,
    el("div", { className: "results" },
      result(`scenario-truth-${slug}`, "Truth"),
      result(`scenario-naive-${slug}`, "Naive handler"),
      result(`scenario-service-${slug}`, "Account service"),
      result(`scenario-service-last-${slug}`, "Service's last number")),
    el("p", { id: `scenario-verdict-${slug}`, className: "verdict", role: "status", "aria-live": "polite", "data-state": "idle" }),
    el("details", {}, el("summary", {}, "What the run did"), el("ol", { id: `scenario-steps-${slug}` })));
  button.addEventListener("click", () => runScenario(info));
  return card;
}

function setValue(id, text, cents_) {
  const node = $(id);
  node.textContent = text;
  if (cents_ !== undefined) node.dataset.cents = cents_;
}

async function runScenario(info) {
  const slug = info.slug;
  const button = $(`scenario-run-${slug}`);
  const verdict = $(`scenario-verdict-${slug}`);
  button.disabled = true;
  verdict.dataset.state = "running";
  delete verdict.dataset.passed;
  const began = Date.now();
  const running = () => {
    const so_far = Math.floor((Date.now() - began) / 1000);
    verdict.textContent = `Running against the stack; a run takes ${info.takes}` + (so_far > 0 ? ` (${so_far} s so far)…` : "…");
  };
  running();
  const ticker = setInterval(running, 1000);
  for (const part of ["truth", "naive", "service", "service-last"]) setValue(`scenario-${part}-${slug}`, "–");
  const result = await api("POST", `/api/scenarios/${slug}/run`);
  clearInterval(ticker);
  button.disabled = false;
  if (!result.ok) {
    verdict.dataset.state = "error";
    verdict.textContent = `The scenario cannot run: ${problem(result)}`;
    return;
  }
  const v = result.body;
  setValue(`scenario-truth-${slug}`, cents(v.truth), v.truth);
  setValue(`scenario-naive-${slug}`, cents(v.naive), v.naive);
  setValue(`scenario-service-${slug}`, cents(v.service), v.service);
  setValue(`scenario-service-last-${slug}`, String(v.service_last_number));
  const steps = v.steps.map((step) => el("li", {}, step));
  for (const note of v.decisions || []) {
    const after = v.published_at_ms ? `, ${((note.at_ms - v.published_at_ms) / 1000).toFixed(1)} s after the publish` : "";
    steps.push(el("li", {}, `decision note: #${note.number} ${note.decision} by ${note.replica}, delivery ${note.delivered}` +
      (note.last_transaction_number !== undefined ? `, last was ${note.last_transaction_number}` : "") +
      (note.progress_acks ? `, ${note.progress_acks} progress ack(s)` : "") +
      (note.fault ? `, fault injected: ${note.fault}` : "") + after));
  }
  $(`scenario-steps-${slug}`).replaceChildren(...steps);
  verdict.dataset.state = "done";
  verdict.dataset.passed = String(v.passed);
  verdict.textContent = v.line;
}

async function loadScenarios() {
  const result = await api("GET", "/api/scenarios");
  if (!result.ok) return;
  $("scenarios").replaceChildren(...result.body.items.map(scenarioCard));
}

// ---------------------------------------------------------------------------------------------

function start() {
  $("open-form").addEventListener("submit", onOpen);
  $("tx-form").addEventListener("submit", onTransaction);
  $("accounts-more").addEventListener("click", () => loadAccounts(true));
  $("ledger-close").addEventListener("click", () => {
    selectedLedger = null;
    $("ledger").hidden = true;
  });
  $("statement-close").addEventListener("click", () => {
    selectedStatement = null;
    $("statement").hidden = true;
  });
  const refilter = () => document.querySelectorAll("#timeline li[data-testid='timeline-row']").forEach(applyFilter);
  $("timeline-filter").addEventListener("input", refilter);
  $("timeline-decisions").addEventListener("change", refilter);
  loadScenarios();
  loadAccounts(false);
  connectEvents();
  refreshStatus();
  refreshBroker();
  setInterval(refreshStatus, STATUS_REFRESH_MS);
  setInterval(refreshBroker, BROKER_REFRESH_MS);
  // A safety net for updates the event stream missed (say, while it reconnected).
  setInterval(() => loadAccounts(false), 30000);
}

document.addEventListener("DOMContentLoaded", start);
