// backup-monitor dashboard: the jobs of /api/v1/status by company and city, refreshed every
// 30 s, and a job view with its entries and a chart of sizes. Plain JS, no build step. API
// text reaches the page only as text nodes (append, textContent), never through innerHTML.

const TOKEN_KEY = "backup-monitor.token";
const REFRESH_MS = 30000;
const PAGE = 1000;
const STATES = ["failed", "late", "ok", "pending", "paused"];
const WORDS = { ok: "OK", late: "Late", failed: "Failed", pending: "Pending", paused: "Paused", success: "Success", missing: "Missing" };
const MARKS = { ok: "\u2713", late: "!", failed: "\u2715", pending: "\u2026", paused: "\u2016", success: "\u2713", missing: "?" };
const DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"];
const MONTHS = "Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split(" ");
const UNITS = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
const REFUSED = "The server refused the token: it is mistyped, or it was revoked. Enter a valid one.";
const $ = (id) => document.getElementById(id);

let token = null;
let statuses = null; // the last answer of /api/v1/status
let loadedAt = null;
let jobId = null; // the job shown, or null for the overview
let jobData = null; // { job, entries, total } of that job
let timer = 0;
let inFlight = null;
let started = false;

// ---- DOM and formatting ----

function build(node, attrs, children) {
  for (const [name, value] of Object.entries(attrs || {})) if (value != null) node.setAttribute(name, value);
  for (const child of children.flat(Infinity)) if (child != null && child !== "" && child !== false) node.append(child);
  return node;
}
const el = (tag, attrs, ...children) => build(document.createElement(tag), attrs, children);
const svg = (tag, attrs, ...children) => build(document.createElementNS("http://www.w3.org/2000/svg", tag), attrs, children);
const fill = (node, ...children) => {
  node.replaceChildren();
  return build(node, {}, children);
};
const show = (node, text) => { node.textContent = text; node.hidden = !text; };
const say = (text) => { $("status").textContent = text; };

const pad = (n) => String(n).padStart(2, "0");
const utc = (d) => `${d.toISOString().slice(0, 16).replace("T", " ")} UTC`;
const clock = (d) => d.toISOString().slice(11, 19);
const compare = (a, b) => a.localeCompare(b, undefined, { sensitivity: "base", numeric: true });
const plural = (n, word) => `${n} ${word}${n === 1 ? "" : "s"}`;

function ago(date, now) {
  const s = Math.round((now - date) / 1000);
  const a = Math.abs(s);
  if (a < 45) return s >= 0 ? "just now" : "in a moment";
  const text = a < 3600 ? `${Math.max(1, Math.round(a / 60))} min`
    : a < 172800 ? `${Math.round(a / 3600)} h`
      : a < 5184000 ? `${Math.round(a / 86400)} d`
        : a < 63072000 ? `${Math.round(a / 2629800)} months` : `${Math.round(a / 31557600)} years`;
  return s >= 0 ? `${text} ago` : `in ${text}`;
}

/** 1 480 000 000 -> "1.4 GiB"; `unit` forces the power of 1024. */
function bytes(n, unit) {
  if (n == null) return null;
  const k = unit ?? Math.min(UNITS.length - 1, Math.floor(Math.log(Math.max(n, 1)) / Math.log(1024)));
  const value = n / 1024 ** k;
  return `${k && value < 10 ? +value.toFixed(k === unit ? 2 : 1) : Math.round(value)} ${UNITS[k]}`;
}

/** The relative time over its UTC instant, or `fallback`. */
function when(iso, now, fallback) {
  if (!iso) return fallback && el("span", { class: "muted" }, fallback);
  const date = new Date(iso);
  return [el("span", { class: "main" }, ago(date, now)), el("time", { datetime: iso, class: "sub" }, utc(date))];
}

const badge = (state) => el("span", { class: `badge s-${state}` },
  el("span", { class: "mark", "aria-hidden": "true" }, MARKS[state] || "\u2022"), WORDS[state] || state);

function cell(label, cls, ...children) {
  const content = children.flat(Infinity).filter((c) => c != null && c !== "");
  return el("td", { class: content.length ? cls : `${cls} empty`, "data-label": label }, content);
}

function schedule(job) {
  const late = `late after ${job.grace_minutes} min${job.is_active ? "" : " (paused)"}`;
  // A cron job (DESIGN §11): its expression on the wall clock of its zone.
  if (job.schedule) {
    const words = job.schedule_description || `cron ${job.schedule} ${job.timezone}`;
    return `${words[0].toUpperCase()}${words.slice(1)} (cron ${job.schedule}); ${late}`;
  }
  const at = `${pad(job.expected_hour_utc)}:${pad(job.expected_minute_utc)} UTC`;
  const text = {
    hourly: `Hourly at minute ${pad(job.expected_minute_utc)}`,
    daily: `Daily at ${at}`,
    weekly: `Weekly on ${DAYS[job.expected_weekday]} at ${at}`,
    monthly: `Monthly on day ${job.expected_day_of_month} at ${at}`,
  }[job.backup_frequency] || `${job.backup_frequency} at ${at}`;
  return `${text}; ${late}`;
}

/** A cron job's next slots, each in the job's zone and in the viewer's; null for the seed's
 * form (its slots are in UTC). */
function nextSlots(job) {
  if (!job.schedule || !job.next_slots_utc?.length) return null;
  const show = (slot, timeZone) => {
    try {
      // dateStyle/timeStyle cannot be combined with timeZoneName: spell the fields out.
      return new Intl.DateTimeFormat(undefined, {
        year: "numeric", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit",
        timeZone, timeZoneName: "short",
      }).format(slot);
    } catch { return utc(slot); }
  };
  return el("ul", { class: "slots" }, ...job.next_slots_utc.map((at) => {
    const slot = new Date(at);
    return el("li", {}, `${show(slot, job.timezone)} \u00b7 your time ${show(slot, undefined)}`);
  }));
}

// ---- token and address ----

/** `storage("getItem")`, `storage("setItem", token)`, `storage("removeItem")`; where the browser
 * refuses storage, the token lasts as long as the page. */
function storage(method, ...args) {
  try { return localStorage[method](TOKEN_KEY, ...args); } catch { return null; }
}

const hashParams = () => new URLSearchParams(location.hash.slice(1));

/** `/#token=…` (alone or beside `job=`): keeps the token, takes it out of the address bar. */
function takeTokenFromAddress() {
  const params = hashParams();
  const value = params.get("token")?.trim();
  if (value == null) return null;
  params.delete("token");
  const rest = params.toString();
  history.replaceState(null, "", location.pathname + location.search + (rest ? `#${rest}` : ""));
  if (value) storage("setItem", value);
  return value;
}

function jobFromAddress() {
  const id = Number(hashParams().get("job"));
  return Number.isSafeInteger(id) && id > 0 ? id : null;
}

// ---- API ----

class Refused extends Error {}

async function api(path) {
  const response = await fetch(path, { headers: { Authorization: `Bearer ${token}`, Accept: "application/json" }, cache: "no-store" });
  if (response.status === 401) throw new Refused();
  if (!response.ok) {
    const body = await response.json().catch(() => ({}));
    const error = new Error(`${typeof body.detail === "string" ? `${body.detail} ` : ""}(HTTP ${response.status})`);
    error.status = response.status;
    throw error;
  }
  return response;
}

const reason = (error) => (error.status ? error.message : "the server did not answer");
const total = (response, fallback) => Number(response.headers.get("X-Total-Count")) || fallback;

async function fetchStatuses() {
  const all = [];
  for (let skip = 0; ; skip += PAGE) {
    const response = await api(`/api/v1/status?limit=${PAGE}&skip=${skip}`);
    const page = await response.json();
    all.push(...page);
    if (page.length < PAGE || all.length >= total(response, 0)) return all;
  }
}

// ---- loading, refreshing, navigating ----

function refresh() {
  inFlight ||= load().finally(() => { inFlight = null; });
  return inFlight;
}

async function load() {
  clearTimeout(timer);
  const using = token; // a token forgotten or replaced meanwhile makes this load moot
  if (!using) return;
  $("groups").setAttribute("aria-busy", "true");
  try {
    const answer = await fetchStatuses();
    if (token !== using) return;
    statuses = answer;
    loadedAt = new Date();
    renderOverview();
    if (jobId !== null) await loadJob(jobId);
    say(`Updated ${clock(loadedAt)} UTC`);
  } catch (error) {
    if (token !== using) return;
    if (error instanceof Refused) return askForToken(REFUSED);
    say(`Refresh failed: ${reason(error)}.${loadedAt ? ` Showing data from ${clock(loadedAt)} UTC.` : ""} Retrying in 30 s.`);
    if (!statuses) fill($("groups"), el("p", { class: "panel error" }, `Could not load the jobs: ${reason(error)}.`));
  } finally {
    $("groups").removeAttribute("aria-busy");
  }
  // A hidden tab waits, and refreshes as soon as it is shown again.
  timer = setTimeout(() => document.hidden || refresh(), REFRESH_MS);
}

async function loadJob(id) {
  try {
    const [jobResponse, entriesResponse] = await Promise.all([
      api(`/api/v1/jobs/${id}`), api(`/api/v1/entries/by_job/${id}?limit=200`)]);
    const job = await jobResponse.json();
    const entries = await entriesResponse.json();
    if (jobId !== id) return;
    jobData = { job, entries, total: total(entriesResponse, entries.length) };
    renderJob();
  } catch (error) {
    if (error instanceof Refused) throw error;
    if (jobId !== id) return;
    show($("job-error"), error.status === 404 ? `There is no job #${id}; it may have been deleted.` : `Could not load job #${id}: ${reason(error)}.`);
    $("entries-note").textContent = "";
  }
}

function showSection(section) {
  for (const id of ["login", "overview", "job"]) $(id).hidden = id !== section;
}

function askForToken(message) {
  clearTimeout(timer);
  storage("removeItem");
  token = statuses = loadedAt = jobId = jobData = inFlight = null;
  fill($("groups"));
  fill($("counts"));
  $("forget").hidden = $("refresh").hidden = true;
  show($("login-error"), message);
  say("");
  document.title = "Backup status \u00b7 backup-monitor";
  showSection("login");
  $("token").focus();
}

function enter() {
  $("login-error").hidden = true;
  $("forget").hidden = $("refresh").hidden = false;
  say("Loading\u2026");
  route();
  refresh();
}

function route() {
  if (!token) return;
  const id = jobFromAddress();
  const previous = jobId;
  if (id === null) {
    jobId = jobData = null;
    showSection("overview");
    if (statuses) renderOverview();
    if (started && previous !== null) (document.querySelector(`[data-key="job-${previous}"]`) || $("overview-title")).focus();
  } else if (id !== previous) {
    jobId = id;
    resetJob(id);
    showSection("job");
    scrollTo(0, 0);
    if (started) $("job-title").focus();
    if (statuses) loadJob(id).catch(() => askForToken(REFUSED));
  }
  started = true;
}

// ---- overview ----

function renderOverview() {
  const companySelect = $("filter-company");
  const focused = document.activeElement?.dataset?.key;
  const companies = [...new Set(statuses.map((s) => s.company_name))].sort(compare);
  const chosen = companySelect.value;
  if (chosen && !companies.includes(chosen)) companies.push(chosen);
  if (companySelect.dataset.options !== companies.join("\n")) {
    fill(companySelect, el("option", { value: "" }, "All companies"), companies.map((c) => el("option", { value: c }, c)));
    companySelect.value = chosen;
    companySelect.dataset.options = companies.join("\n");
  }

  const company = companySelect.value;
  const state = $("filter-state").value;
  const inCompany = statuses.filter((s) => !company || s.company_name === company);
  const shown = inCompany.filter((s) => !state || s.state === state);
  $("clear").hidden = !company && !state;
  $("shown").textContent = shown.length === statuses.length ? plural(shown.length, "job") : `${shown.length} of ${plural(statuses.length, "job")} shown`;
  fill($("counts"), [["", "All jobs", inCompany.length]].concat(STATES.map((s) => [s, WORDS[s], inCompany.filter((j) => j.state === s).length]))
    .map(([s, word, n]) => el("li", {}, el("button", {
      type: "button", class: `count s-${s || "all"}${n || !s ? "" : " zero"}`, "aria-pressed": String(state === s), "data-state": s, "data-key": `count-${s || "all"}`,
    }, el("span", { class: "n" }, String(n)), el("span", { class: "w" }, word)))));
  renderGroups(shown);

  const problems = statuses.filter((s) => s.state === "failed" || s.state === "late").length;
  if (jobId === null) document.title = `${problems ? `(${problems}) ` : ""}Backup status \u00b7 backup-monitor`;
  if (focused) document.querySelector(`[data-key="${CSS.escape(focused)}"]`)?.focus();
}

function renderGroups(jobs) {
  const root = $("groups");
  if (!jobs.length) {
    return fill(root, el("p", { class: "panel empty" }, statuses.length ? "No job matches these filters."
      : "No jobs yet. An administrator adds them through the API (see the API docs below)."));
  }
  const companies = new Map();
  const sorted = [...jobs].sort((a, b) => compare(a.company_name, b.company_name) || compare(a.city, b.city)
    || compare(a.database_name, b.database_name) || a.job_id - b.job_id);
  for (const s of sorted) {
    const cities = companies.get(s.company_name) || companies.set(s.company_name, new Map()).get(s.company_name);
    (cities.get(s.city) || cities.set(s.city, []).get(s.city)).push(s);
  }
  const now = Date.now();
  fill(root, [...companies].map(([company, cities], i) => {
    const all = [...cities.values()].flat();
    const summary = STATES.map((s) => [s, all.filter((j) => j.state === s).length]).filter(([, n]) => n)
      .map(([s, n]) => `${n} ${WORDS[s].toLowerCase()}`).join(" \u00b7 ");
    return el("section", { class: "panel company", "aria-labelledby": `company-${i}` },
      el("h2", { id: `company-${i}` }, el("span", {}, company), el("span", { class: "summary" }, summary)),
      [...cities].map(([city, rows]) => [el("h3", {}, city), jobTable(rows, now, `${company}, ${city}`)]));
  }));
}

function lastError(entry) {
  if (entry?.status === "failed") {
    const message = entry.error_message || "Failed, without a message";
    return el("span", { class: "err", title: message }, message);
  }
  if (entry?.status === "missing") return el("span", { class: "muted" }, `No report for the ${utc(new Date(entry.backup_timestamp_utc))} slot`);
  return null;
}

function jobTable(rows, now, caption) {
  const heads = ["Database", "State", "Last success", "Last size", "Next due", "Last error"];
  return el("table", { class: "cards jobs" }, el("caption", { class: "vh" }, caption),
    el("thead", {}, el("tr", {}, heads.map((h) => el("th", { scope: "col" }, h)))),
    el("tbody", {}, rows.map((s) => el("tr", { class: `s-${s.state}`, "data-job-id": s.job_id, "data-state": s.state },
      cell("Database", "c-db", el("a", { href: `#job=${s.job_id}`, "data-key": `job-${s.job_id}` }, s.database_name),
        el("span", { class: "sub" }, s.agent_id_responsible)),
      cell("State", "c-state", badge(s.state)),
      cell("Last success", "c-when", when(s.last_success_utc, now, "never")),
      cell("Last size", "c-size", bytes(s.last_entry?.backup_size_bytes)),
      cell("Next due", "c-when", when(s.next_due_utc, now)),
      cell("Last error", "c-error", lastError(s.last_entry))))));
}

// ---- job view ----

function resetJob(id) {
  $("job-title").textContent = `Job #${id}`;
  $("job-where").textContent = "";
  $("job-error").hidden = true;
  for (const node of [$("job-state"), $("job-facts"), $("chart"), $("entries").tBodies[0]]) fill(node);
  $("entries-note").textContent = "Loading\u2026";
}

function renderJob() {
  const { job, entries, total: count } = jobData;
  const status = statuses?.find((s) => s.job_id === job.id);
  const now = Date.now();
  $("job-error").hidden = true;
  $("job-title").textContent = job.database_name;
  document.title = `${job.database_name} (${job.company_name}, ${job.city}) \u00b7 backup-monitor`;
  fill($("job-state"), status && badge(status.state));
  $("job-where").textContent = `${job.company_name} \u00b7 ${job.city} \u00b7 job #${job.id}`;
  fill($("job-facts"), [
    ["Schedule", schedule(job)],
    ...(nextSlots(job) ? [["Next slots", nextSlots(job)]] : []),
    ["Agent", job.agent_id_responsible],
    ["Last success", when(status?.last_success_utc, now, "never")],
    ["Next due", when(status?.next_due_utc, now, "\u2014")],
    ["Storage path", el("code", {}, job.final_storage_path_template)],
    ["Alerts also to", job.notify_emails?.join(", ") || "Only the global recipients"],
    ["Created", utc(new Date(job.created_at))],
  ].map(([term, value]) => el("div", {}, el("dt", {}, term), el("dd", {}, value))));

  $("entries-note").textContent = !count ? "No entries yet."
    : count > entries.length ? `The latest ${entries.length} of ${count} entries, newest first.` : `${count} ${count === 1 ? "entry" : "entries"}, newest first.`;
  fill($("entries").tBodies[0], entries.map((e) => {
    const date = new Date(e.backup_timestamp_utc);
    const hash = (e.backup_hash || "").replace(/^sha256:/, "");
    return el("tr", { class: `s-${e.status}` },
      cell("When", "c-when", el("time", { datetime: e.backup_timestamp_utc, class: "main" }, utc(date)), el("span", { class: "sub" }, ago(date, now))),
      cell("Status", "c-state", badge(e.status)),
      cell("Size", "c-size", bytes(e.backup_size_bytes)),
      cell("Hash", "c-hash", hash && el("code", { title: e.backup_hash }, hash.slice(0, 12))),
      cell("Error", "c-error", e.error_message && el("span", { class: "err-full" }, e.error_message)));
  }));
  drawChart();
}

/** Gridlines for sizes up to `max`: a round step in the unit of `max`. */
function scale(max) {
  const unit = Math.max(0, Math.min(UNITS.length - 1, Math.floor(Math.log(Math.max(max, 1)) / Math.log(1024))));
  const rough = Math.max(max, 1) / 4 / 1024 ** unit;
  const magnitude = 10 ** Math.floor(Math.log10(rough));
  const f = rough / magnitude;
  const step = Math.max(1, (f <= 1 ? 1 : f <= 2 ? 2 : f <= 2.5 ? 2.5 : f <= 5 ? 5 : 10) * magnitude * 1024 ** unit);
  return { unit, step, top: Math.ceil(Math.max(max, 1) / step) * step };
}

function drawChart() {
  const box = fill($("chart"));
  const at = (e) => Date.parse(e.backup_timestamp_utc);
  const points = jobData.entries.filter((e) => e.status === "success" && e.backup_size_bytes != null)
    .map((e) => ({ t: at(e), v: e.backup_size_bytes })).sort((a, b) => a.t - b.t);
  const marks = jobData.entries.filter((e) => e.status !== "success").map((e) => ({ t: at(e), status: e.status }));
  if (!points.length) return box.append(el("p", { class: "muted" }, "No successful backup has reported its size yet."));

  const width = Math.max(280, Math.floor(box.clientWidth || 640));
  const height = width < 560 ? 190 : 240;
  const m = { l: 62, r: 14, t: 12, b: 26 };
  const times = points.concat(marks).map((p) => p.t);
  let t0 = Math.min(...times);
  let t1 = Math.max(...times);
  if (t1 - t0 < 36e5) [t0, t1] = [t0 - 432e5, t1 + 432e5];
  const max = Math.max(...points.map((p) => p.v));
  const { unit, step, top } = scale(max);
  const f = (n) => n.toFixed(1);
  const x = (t) => f(m.l + ((t - t0) / (t1 - t0)) * (width - m.l - m.r));
  const y = (v) => f(height - m.b - (v / top) * (height - m.t - m.b));
  const first = points[0];
  const last = points[points.length - 1];
  const failed = marks.filter((p) => p.status === "failed").length;

  const chart = svg("svg", { class: "plot", width, height, viewBox: `0 0 ${width} ${height}`, role: "img", "aria-labelledby": "chart-title chart-desc" },
    svg("desc", { id: "chart-desc" }, `${plural(points.length, "successful backup")} from ${utc(new Date(first.t))} to ${utc(new Date(last.t))}; `
      + `latest ${bytes(last.v)}, largest ${bytes(max)}; ${failed} failed and ${marks.length - failed} missing in that time.`));
  for (let v = 0; v <= top + step / 2; v += step) {
    chart.append(svg("line", { class: v ? "grid" : "axis", x1: m.l, x2: width - m.r, y1: y(v), y2: y(v) }),
      svg("text", { class: "ylabel", x: m.l - 8, y: +y(v) + 4 }, v ? bytes(v, unit) : "0"));
  }
  const hourly = t1 - t0 <= 2 * 864e5;
  const tick = (hourly ? 36e5 : 864e5) * Math.max(1, Math.ceil((t1 - t0) / (hourly ? 36e5 : 864e5) / Math.max(2, Math.floor(width / 120))));
  for (let t = Math.ceil(t0 / tick) * tick; t <= t1; t += tick) {
    const d = new Date(t);
    if (x(t) > m.l + 16 && x(t) < width - m.r - 16) {
      chart.append(svg("text", { class: "xlabel", x: x(t), y: height - 7 }, hourly ? `${pad(d.getUTCHours())}:00` : `${d.getUTCDate()} ${MONTHS[d.getUTCMonth()]}`));
    }
  }
  const line = points.map((p, i) => `${i ? "L" : "M"}${x(p.t)},${y(p.v)}`).join("");
  build(chart, {}, [svg("path", { class: "area", d: `${line}L${x(last.t)},${y(0)}L${x(first.t)},${y(0)}Z` }), svg("path", { class: "line", d: line }),
    points.map((p) => svg("circle", { class: "dot", cx: x(p.t), cy: y(p.v), r: 3.5 }, svg("title", {}, `${utc(new Date(p.t))}: ${bytes(p.v)}`))),
    marks.map((p) => svg("path", {
      class: `m-${p.status}`,
      d: p.status === "failed" ? `M${x(p.t) - 4},${height - m.b - 12}l8,8m0,-8l-8,8` : `M${x(p.t)},${height - m.b - 13}l5,9h-10z`,
    }, svg("title", {}, `${utc(new Date(p.t))}: ${p.status}`)))]);
  box.append(chart);
}

// ---- events ----

$("login-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const input = $("token");
  const value = input.value.trim();
  input.value = "";
  if (!/^[\x21-\x7e]+$/.test(value)) {
    show($("login-error"), "A token is one word of printable characters, as `token create` printed it.");
    return input.focus();
  }
  storage("setItem", (token = value));
  enter();
});
$("forget").addEventListener("click", () => {
  askForToken("");
  say("Token forgotten.");
});
$("refresh").addEventListener("click", () => {
  say("Refreshing\u2026");
  refresh();
});
$("filters").addEventListener("change", renderOverview);
$("filters").addEventListener("submit", (event) => event.preventDefault());
$("filters").addEventListener("reset", (event) => {
  event.preventDefault();
  $("filter-company").value = $("filter-state").value = "";
  renderOverview();
  $("filter-company").focus();
});
$("counts").addEventListener("click", (event) => {
  const button = event.target.closest("button[data-state]");
  if (!button) return;
  const select = $("filter-state");
  select.value = select.value === button.dataset.state ? "" : button.dataset.state;
  renderOverview();
});
document.addEventListener("click", (event) => {
  if (!event.target.closest("a.home") || event.button || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
  event.preventDefault();
  if (location.hash) history.pushState(null, "", location.pathname + location.search);
  route();
});
addEventListener("popstate", route);
addEventListener("hashchange", route);
document.addEventListener("visibilitychange", () => {
  if (!document.hidden && token && !(Date.now() - loadedAt < REFRESH_MS)) refresh();
});
let resizing = 0;
addEventListener("resize", () => {
  clearTimeout(resizing);
  resizing = setTimeout(() => jobData && !$("job").hidden && drawChart(), 150);
});

token = takeTokenFromAddress() || storage("getItem");
if (token) enter();
else askForToken("");
