// backup-monitor dashboard: the jobs of /api/v1/status by company and city and the recent
// alerts, refreshed every 30 s, and a job view with its entries, its alerts and charts of
// sizes and run durations. With an admin token it also manages (DESIGN §15): a job's form
// (create, edit), pause and resume, snooze, delete, the ping URL and its rotation, and the
// tokens; a viewer token sees none of those controls, and an agent token is refused. Plain
// JS, no build step. API text reaches the page only as text nodes (append, textContent),
// never through innerHTML.

const TOKEN_KEY = "backup-monitor.token";
const REFRESH_MS = 30000;
const PAGE = 1000;
const STATES = ["failed", "late", "suspect", "ok", "pending", "paused"];
const PROBLEMS = ["failed", "late", "suspect"];
const WORDS = {
  ok: "OK", late: "Late", failed: "Failed", suspect: "Suspect", pending: "Pending", paused: "Paused",
  success: "Success", missing: "Missing", started: "Started",
};
const MARKS = {
  ok: "\u2713", late: "!", failed: "\u2715", suspect: "\u2248", pending: "\u2026", paused: "\u2016",
  success: "\u2713", missing: "?", started: "\u25b8",
};
// Each alert kind in words, and the state whose colours it takes.
const ALERTS = {
  late: ["Late", "late"], failed: ["Failed", "failed"], suspect: ["Suspect", "suspect"], hung: ["Hung", "late"],
  recovered: ["Recovered", "ok"], agent_silent: ["Agent silent", "failed"], agent_back: ["Agent back", "ok"],
};
const ALERT_PAGE = 100; // the latest alerts read at each refresh
const ALERTS_SHOWN = 10; // of which the overview lists this many
const DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"];
const MONTHS = "Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split(" ");
const UNITS = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
const REFUSED = "The server refused the token: it is mistyped, or it was revoked. Enter a valid one.";
const agentRefused = (agent) => `This is an agent token (agent ${agent}): it only reports backups and reads its own agent\u2019s jobs, so this page does not take it. `
  + "Enter a viewer token to watch every job, or an admin token to manage jobs and tokens.";
const $ = (id) => document.getElementById(id);

let token = null;
let statuses = null; // the last answer of /api/v1/status
let alerts = null; // the latest page of /api/v1/alerts, or the Error that kept it away
let loadedAt = null;
let jobId = null; // the job shown, or null for the overview
let jobData = null; // { job, entries, total } of that job
let timer = 0;
let inFlight = null;
let started = false;
let role = null; // "admin" or "viewer", from /api/v1/tokens/current
let companies = null; // the last answer of /api/v1/companies, for the badges
let editing = null; // the job whose form is shown (null: a new job)
let routedAt = null; // the address the view was last routed for
let changesMade = 0; // changes made from this page so far

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
const utc = (d) => (Number.isNaN(d.getTime()) ? "an unknown time" : `${d.toISOString().slice(0, 16).replace("T", " ")} UTC`);
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

/** 90 -> "1 min 30 s", 7260 -> "2 h 1 min": the two largest units. */
function duration(seconds) {
  if (seconds == null) return null;
  const s = Math.max(0, Math.round(seconds));
  const units = [[86400, "d"], [3600, "h"], [60, "min"], [1, "s"]];
  const i = Math.max(0, units.findIndex(([n]) => s >= n));
  const [big, bigName] = units[i];
  const [small, smallName] = units[Math.min(i + 1, units.length - 1)];
  const rest = Math.floor((s % big) / small);
  return `${Math.floor(s / big)} ${bigName}${rest && i < units.length - 1 ? ` ${rest} ${smallName}` : ""}`;
}

/** "running since 14:05 UTC (12 min)", with the day when the run began on another one. */
function running(iso, now) {
  const since = new Date(iso);
  const day = utc(since).slice(0, 10) === utc(new Date(now)).slice(0, 10) ? "" : `${since.getUTCDate()} ${MONTHS[since.getUTCMonth()]} `;
  const seconds = (now - since) / 1000;
  return el("span", { class: "run" }, el("span", { class: "mark", "aria-hidden": "true" }, MARKS.started), "running since ",
    el("time", { datetime: iso, title: utc(since) }, `${day}${pad(since.getUTCHours())}:${pad(since.getUTCMinutes())} UTC`),
    ` (${seconds < 60 ? "under 1 min" : duration(Math.floor(seconds / 60) * 60)})`);
}

/** The relative time over its UTC instant, or `fallback`. */
function when(iso, now, fallback) {
  if (!iso) return fallback && el("span", { class: "muted" }, fallback);
  const date = new Date(iso);
  return [el("span", { class: "main" }, ago(date, now)), el("time", { datetime: iso, class: "sub" }, utc(date))];
}

const badge = (state, word) => el("span", { class: `badge s-${state}` },
  el("span", { class: "mark", "aria-hidden": "true" }, MARKS[state] || "\u2022"), word || WORDS[state] || state);

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

/** A request with the token; `body` is sent as JSON. An answer other than 2xx throws, with
 * the answer's `detail` (a 422's list of field errors kept as `error.fields`). */
async function api(path, method = "GET", body = undefined) {
  const headers = { Authorization: `Bearer ${token}`, Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(path, { method, headers, cache: "no-store", body: body === undefined ? undefined : JSON.stringify(body) });
  if (response.status === 401) throw new Refused();
  if (!response.ok) {
    const answer = await response.json().catch(() => ({}));
    const error = new Error(`${typeof answer.detail === "string" ? `${answer.detail} ` : ""}(HTTP ${response.status})`);
    error.status = response.status;
    error.detail = answer.detail;
    if (Array.isArray(answer.detail)) error.fields = answer.detail;
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

/** The latest alerts; an error other than a refused token is kept for the page to show,
 * so that the jobs are shown even when the alerts cannot be. */
async function fetchAlerts() {
  try {
    const page = await (await api(`/api/v1/alerts?limit=${ALERT_PAGE}`)).json();
    return Array.isArray(page) ? page : [];
  } catch (error) {
    if (error instanceof Refused) throw error;
    return error;
  }
}

/** Each company with its badge URL; null when they cannot be read (the jobs still show). */
async function fetchCompanies() {
  try {
    const page = await (await api(`/api/v1/companies?limit=${PAGE}`)).json();
    return Array.isArray(page) ? page : null;
  } catch (error) {
    if (error instanceof Refused) throw error;
    return null;
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
    const [answer, recent, firms] = await Promise.all([fetchStatuses(), fetchAlerts(), fetchCompanies()]);
    if (token !== using) return;
    statuses = answer;
    alerts = recent;
    companies = firms;
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
  const seen = changesMade;
  try {
    const [jobResponse, entriesResponse] = await Promise.all([
      api(`/api/v1/jobs/${id}`), api(`/api/v1/entries/by_job/${id}?limit=200`)]);
    const job = await jobResponse.json();
    const entries = await entriesResponse.json();
    if (jobId !== id || seen !== changesMade) return;
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
  for (const id of ["login", "overview", "job", "editor", "tokens"]) $(id).hidden = id !== section;
}

function askForToken(message) {
  clearTimeout(timer);
  storage("removeItem");
  token = statuses = alerts = loadedAt = jobId = jobData = inFlight = role = companies = editing = null;
  showRole();
  notice("");
  fill($("groups"));
  fill($("alerts"));
  fill($("counts"));
  $("forget").hidden = $("refresh").hidden = true;
  show($("login-error"), message);
  say("");
  document.title = "Backup status \u00b7 backup-monitor";
  showSection("login");
  $("token").focus();
}

/** Asks what the token may do: an agent token is refused with the reason; an admin token
 * gets the controls that change things, a viewer token none. */
async function enter() {
  $("login-error").hidden = true;
  say("Loading\u2026");
  const using = token;
  try {
    const who = await (await api("/api/v1/tokens/current")).json();
    if (token !== using) return;
    if (who.role === "agent") return askForToken(agentRefused(who.agent_id));
    role = who.role === "admin" ? "admin" : "viewer";
  } catch (error) {
    if (token !== using) return;
    if (error instanceof Refused) return askForToken(REFUSED);
    role = "viewer"; // the page still shows the jobs; it offers no change it cannot check
  }
  showRole();
  $("forget").hidden = $("refresh").hidden = false;
  route();
  refresh();
}

/** Shows the controls that change things to an admin token only. */
function showRole() {
  for (const node of document.querySelectorAll(".admin-only")) node.hidden = role !== "admin";
}

/** A message about what was just done, announced politely; "" hides it. */
function notice(text) {
  show($("notice"), text);
}

function route() {
  if (!token || !role) return;
  // A message about what was just done stays while the address does (popstate and
  // hashchange both route one change).
  if (location.hash !== routedAt) notice("");
  const params = hashParams();
  const manage = params.has("new") || params.has("edit") || params.has("tokens");
  if (manage && role !== "admin") {
    notice("Only an admin token can add or change jobs and tokens; this one is a viewer token.");
    history.replaceState(null, "", location.pathname + location.search);
  } else if (manage) {
    jobId = jobData = null;
    if (params.has("tokens")) openTokens();
    else openEditor(params.has("edit") ? Number(params.get("edit")) : null);
    started = true;
    routedAt = location.hash;
    return;
  }
  const id = jobFromAddress();
  const previous = jobId;
  if (id === null) {
    jobId = jobData = null;
    showSection("overview");
    if (statuses) renderOverview();
    if (started && previous !== null) (document.querySelector(`[data-key="job-${previous}"]`) || $("overview-title")).focus();
  } else if (id !== previous || $("job").hidden) {
    jobId = id;
    resetJob(id);
    showSection("job");
    scrollTo(0, 0);
    if (started) $("job-title").focus();
    if (statuses) loadJob(id).catch(() => askForToken(REFUSED));
  }
  started = true;
  routedAt = location.hash;
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
  const jobIds = new Set(inCompany.map((s) => s.job_id));
  const agents = new Set(inCompany.map((s) => s.agent_id_responsible));
  renderAlerts($("alerts"), (a) => !company || (a.job_id != null ? jobIds.has(a.job_id) : agents.has(a.agent_id)), ALERTS_SHOWN,
    company ? `No alert about ${company}\u2019s jobs yet.` : "No alert yet.");

  const problems = statuses.filter((s) => PROBLEMS.includes(s.state)).length;
  if (jobId === null && !$("overview").hidden) document.title = `${problems ? `(${problems}) ` : ""}Backup status \u00b7 backup-monitor`;
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
      companyBadge(company, i),
      [...cities].map(([city, rows]) => [el("h3", {}, city), jobTable(rows, now, `${company}, ${city}`)]));
  }));
}

/** The company's badge as a Markdown line to copy into a wiki (a badge needs no token). */
function companyBadge(company, i) {
  const url = companies?.find((c) => c.company_name === company)?.badge_url;
  if (!url) return null;
  const line = `![${company.replace(/[[\]]/g, "")} backups](${absolute(url)})`;
  return el("details", { class: "badge-md" }, el("summary", {}, "Badge for a wiki"),
    copyRow(line, `badge-${i}`, `Markdown of ${company}\u2019s badge`));
}

/** What a row says besides its dates: why it is suspect, or its last error. */
function details(s) {
  if (s.state === "suspect" && s.suspect_reason) return el("span", { class: "why" }, s.suspect_reason);
  return lastError(s.last_entry);
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
  const heads = ["Database", "State", "Last success", "Last size", "Next due", "Details"];
  return el("table", { class: "cards jobs" }, el("caption", { class: "vh" }, caption),
    el("thead", {}, el("tr", {}, heads.map((h) => el("th", { scope: "col" }, h)))),
    el("tbody", {}, rows.map((s) => el("tr", { class: `s-${s.state}`, "data-job-id": s.job_id, "data-state": s.state },
      cell("Database", "c-db", el("a", { href: `#job=${s.job_id}`, "data-key": `job-${s.job_id}` }, s.database_name),
        el("span", { class: "sub" }, s.agent_id_responsible)),
      cell("State", "c-state", badge(s.state), s.running_since && running(s.running_since, now)),
      cell("Last success", "c-when", when(s.last_success_utc, now, "never")),
      cell("Last size", "c-size", bytes(s.last_size_bytes ?? s.last_entry?.backup_size_bytes)),
      cell("Next due", "c-when", when(s.next_due_utc, now)),
      cell("Details", "c-error", details(s))))));
}

// ---- alerts ----

/** What an alert is about: its job (a link), or its agent by name. */
function alertSubject(a) {
  if (a.job_id == null) {
    return [el("span", { class: "what" }, "Agent "), el("strong", { class: "agent" }, a.agent_id ?? "(unnamed)")];
  }
  const job = statuses?.find((s) => s.job_id === a.job_id);
  if (!job) return el("span", { class: "what" }, `Job #${a.job_id}`);
  return [el("a", { href: `#job=${a.job_id}` }, job.database_name), el("span", { class: "muted" }, ` \u00b7 ${job.company_name}, ${job.city}`)];
}

/** The alert's slot (for an agent alert: since when, and how many of its jobs are late
 * now), and its delivery. */
function alertFacts(a, now) {
  const facts = [];
  const slot = a.slot_utc && utc(new Date(a.slot_utc));
  if (a.kind === "agent_silent") {
    const late = (statuses || []).filter((s) => s.agent_id_responsible === a.agent_id && s.state === "late").length;
    facts.push(`silent since the ${slot} slot`, late && `${late} of its jobs ${late === 1 ? "is" : "are"} late now`);
  } else if (a.kind === "agent_back") {
    facts.push("reporting again");
  } else if (slot) {
    facts.push(`for the ${slot} slot`);
  }
  const queued = a.created_at ? `queued ${ago(new Date(a.created_at), now)}` : "queued";
  facts.push(a.sent_at ? `sent ${ago(new Date(a.sent_at), now)}`
    : `${queued}, not sent yet${a.last_error ? ` (${plural(a.attempts, "attempt")}): ${a.last_error}` : ""}`);
  return facts.filter(Boolean).join(" \u00b7 ");
}

function alertItem(a, now) {
  const [word, style] = ALERTS[a.kind] || [String(a.kind), "other"];
  return el("li", { class: `alert s-${style}`, "data-alert-id": a.id, "data-kind": a.kind },
    badge(style, word), el("span", { class: "about" }, alertSubject(a)),
    el("span", { class: "sub" }, alertFacts(a, now)));
}

/** Fills `root` with the loaded alerts that `keep`, at most `max`, newest first. */
function renderAlerts(root, keep, max, none) {
  if (alerts instanceof Error) return fill(root, el("p", { class: "muted" }, `Could not load the alerts: ${reason(alerts)}.`));
  if (!alerts) return fill(root);
  const kept = alerts.filter((a) => a && keep(a));
  const now = Date.now();
  fill(root, kept.length ? el("ol", { class: "alerts" }, kept.slice(0, max).map((a) => alertItem(a, now))) : el("p", { class: "muted" }, none));
}

// ---- job view ----

function resetJob(id) {
  $("job-title").textContent = `Job #${id}`;
  $("job-actions").hidden = $("ping").hidden = $("job-snoozed").hidden = true;
  $("job-where").textContent = "";
  $("job-error").hidden = $("job-note").hidden = true;
  for (const node of [$("job-state"), $("job-facts"), $("chart"), $("entries").tBodies[0], $("job-alerts")]) fill(node);
  $("entries-note").textContent = "Loading\u2026";
}

/** When a success is suspect (DESIGN §10), in words. */
function checks(job) {
  const rules = [];
  if (job.min_size_bytes > 0) rules.push(job.min_size_bytes === 1 ? "empty (0 B)" : `under ${bytes(job.min_size_bytes)}`);
  if (job.size_drop_percent != null) rules.push(`under ${100 - job.size_drop_percent} % of the median of the previous 10`);
  if (job.stale_hash_check) rules.push("the same hash as the previous success");
  const last = rules.pop();
  return last ? `Suspect if ${rules.length ? `${rules.join(", ")} or ` : ""}${last}` : "None";
}

/** Each `started` entry's fate, by its id: running now, finished (by which entry), or not. */
function runs(entries, status) {
  const fates = new Map();
  const at = (e) => Date.parse(e.backup_timestamp_utc);
  const starts = entries.filter((e) => e.status === "started");
  for (const end of entries.filter((e) => e.duration_seconds != null)) {
    const began = at(end) - end.duration_seconds * 1000;
    const start = starts.find((s) => !fates.has(s.id) && Math.abs(at(s) - began) < 1500 && (end.run_id == null || s.run_id === end.run_id));
    if (start) fates.set(start.id, end);
  }
  const open = status?.running_since && Date.parse(status.running_since);
  for (const s of starts) if (!fates.has(s.id) && at(s) === open) fates.set(s.id, "running");
  return fates;
}

function entryDetails(e, fate, now) {
  if (e.status === "started") {
    return [fate === "running" ? running(e.backup_timestamp_utc, now)
      : fate ? `finished after ${duration(fate.duration_seconds)} (${fate.status})` : el("span", { class: "muted" }, "no finish was reported for this run"),
    e.run_id && el("span", { class: "sub" }, `run ${e.run_id}`)];
  }
  return [e.suspect_reason && el("span", { class: "why" }, e.suspect_reason),
    e.error_message && el("span", { class: "err-full" }, e.error_message)];
}

function renderJob() {
  const { job, entries, total: count } = jobData;
  const status = statuses?.find((s) => s.job_id === job.id);
  const now = Date.now();
  $("job-error").hidden = true;
  $("job-title").textContent = job.database_name;
  document.title = `${job.database_name} (${job.company_name}, ${job.city}) \u00b7 backup-monitor`;
  fill($("job-state"), status && badge(status.state), status?.running_since && running(status.running_since, now));
  $("job-where").textContent = `${job.company_name} \u00b7 ${job.city} \u00b7 job #${job.id}`;
  const suspect = status?.state === "suspect" && status.suspect_reason;
  fill($("job-note"), suspect && [el("strong", {}, "Suspect: "), status.suspect_reason]);
  $("job-note").hidden = !suspect;
  fill($("job-facts"), [
    ["Schedule", schedule(job)],
    ...(nextSlots(job) ? [["Next slots", nextSlots(job)]] : []),
    ["Agent", job.agent_id_responsible],
    ["Last success", when(status?.last_success_utc, now, "never")],
    ["Next due", when(status?.next_due_utc, now, "\u2014")],
    ["Last run took", duration(status?.last_duration_seconds) || el("span", { class: "muted" }, "not measured (no start was reported)")],
    ["Longest run allowed", job.max_duration_minutes ? `${duration(job.max_duration_minutes * 60)}, then a hung alert` : "No limit"],
    ["Content checks", checks(job)],
    ["Storage path", el("code", {}, job.final_storage_path_template)],
    ["Alerts also to", job.notify_emails?.join(", ") || "Only the global recipients"],
    ["Created", utc(new Date(job.created_at))],
  ].map(([term, value]) => el("div", {}, el("dt", {}, term), el("dd", {}, value))));

  $("entries-note").textContent = !count ? "No entries yet."
    : count > entries.length ? `The latest ${entries.length} of ${count} entries, newest first.` : `${count} ${count === 1 ? "entry" : "entries"}, newest first.`;
  const fates = runs(entries, status);
  fill($("entries").tBodies[0], entries.map((e) => {
    const date = new Date(e.backup_timestamp_utc);
    const hash = (e.backup_hash || "").replace(/^sha256:/, "");
    const shown = e.status === "success" && e.suspect_reason ? "suspect" : e.status;
    return el("tr", { class: `s-${shown}`, "data-entry-id": e.id },
      cell("When", "c-when", el("time", { datetime: e.backup_timestamp_utc, class: "main" }, utc(date)), el("span", { class: "sub" }, ago(date, now))),
      cell("Status", "c-state", badge(shown)),
      cell("Size", "c-size", bytes(e.backup_size_bytes)),
      cell("Duration", "c-dur", duration(e.duration_seconds)),
      cell("Hash", "c-hash", hash && el("code", { title: e.backup_hash }, hash.slice(0, 12))),
      cell("Details", "c-error", entryDetails(e, fates.get(e.id), now)));
  }));
  renderManage(job);
  renderAlerts($("job-alerts"), (a) => a.job_id === job.id || (a.job_id == null && a.agent_id === job.agent_id_responsible),
    ALERT_PAGE, `No alert about this job or its agent among the latest ${ALERT_PAGE}.`);
  drawChart();
}

/** Gridlines for sizes up to `max`: a round step in the unit of `max`. */
function sizeScale(max) {
  const unit = Math.max(0, Math.min(UNITS.length - 1, Math.floor(Math.log(Math.max(max, 1)) / Math.log(1024))));
  const rough = Math.max(max, 1) / 4 / 1024 ** unit;
  const magnitude = 10 ** Math.floor(Math.log10(rough));
  const f = rough / magnitude;
  const step = Math.max(1, (f <= 1 ? 1 : f <= 2 ? 2 : f <= 2.5 ? 2.5 : f <= 5 ? 5 : 10) * magnitude * 1024 ** unit);
  return { step, top: Math.ceil(Math.max(max, 1) / step) * step, label: (v) => bytes(v, unit) };
}

/** Gridlines for durations up to `max` seconds: a step a clock would use. */
function durationScale(max) {
  const steps = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400];
  const step = steps.find((s) => s * 4 >= max) || Math.ceil(max / 4 / 86400) * 86400;
  return { step, top: Math.ceil(Math.max(max, 1) / step) * step, label: duration };
}

/** Both charts over the same span of time: sizes of the successes, and durations of the
 * finished runs; failures and missed slots marked on both. */
function drawChart() {
  const box = fill($("chart"));
  const at = (e) => Date.parse(e.backup_timestamp_utc);
  const entries = jobData.entries;
  const series = (keep, value) => entries.filter(keep).map((e) => ({ t: at(e), v: value(e), e })).sort((a, b) => a.t - b.t);
  const sizes = series((e) => e.status === "success" && e.backup_size_bytes != null, (e) => e.backup_size_bytes);
  const durations = series((e) => e.duration_seconds != null, (e) => e.duration_seconds);
  const marks = entries.filter((e) => e.status === "failed" || e.status === "missing").map((e) => ({ t: at(e), status: e.status }));
  const times = sizes.concat(durations, marks).map((p) => p.t);
  let span = [Math.min(...times), Math.max(...times)];
  if (span[1] - span[0] < 36e5) span = [span[0] - 432e5, span[1] + 432e5];
  const width = Math.max(280, Math.floor(box.clientWidth || 640));
  const failed = marks.filter((p) => p.status === "failed").length;
  const among = `${failed} failed and ${marks.length - failed} missing in that time`;
  const suspect = sizes.filter((p) => p.e.suspect_reason).length;
  box.append(el("h3", { id: "chart-sizes" }, "Size of each successful backup"), sizes.length
    ? plot({ name: "sizes", noun: "successful backup", points: sizes, marks, span, width, scale: sizeScale(Math.max(...sizes.map((p) => p.v))), show: bytes, among: `${suspect} suspect; ${among}` })
    : el("p", { class: "muted" }, "No successful backup has reported its size yet."));
  box.append(el("h3", { id: "chart-durations" }, "Duration of each run"), durations.length
    ? plot({ name: "durations", noun: "timed run", points: durations, marks, span, width, scale: durationScale(Math.max(...durations.map((p) => p.v))), show: duration, among })
    : el("p", { class: "muted" }, "No run has reported its duration yet: a run is timed from its \u201cstarted\u201d report to its success or failure."));
}

function plot({ name, noun, points, marks, span: [t0, t1], width, scale, show, among }) {
  const height = width < 560 ? 170 : 210;
  const m = { l: 62, r: 14, t: 12, b: 26 };
  const { step, top, label } = scale;
  const f = (n) => n.toFixed(1);
  const x = (t) => f(m.l + ((t - t0) / (t1 - t0)) * (width - m.l - m.r));
  const y = (v) => f(height - m.b - (v / top) * (height - m.t - m.b));
  const first = points[0];
  const last = points[points.length - 1];
  const max = Math.max(...points.map((p) => p.v));
  const chart = svg("svg", { class: "plot", width, height, viewBox: `0 0 ${width} ${height}`, role: "img", "aria-labelledby": `chart-${name} chart-${name}-desc` },
    svg("desc", { id: `chart-${name}-desc` }, `${plural(points.length, noun)} from ${utc(new Date(first.t))} to ${utc(new Date(last.t))}; `
      + `latest ${show(last.v)}, largest ${show(max)}; ${among}.`));
  for (let v = 0; v <= top + step / 2; v += step) {
    chart.append(svg("line", { class: v ? "grid" : "axis", x1: m.l, x2: width - m.r, y1: y(v), y2: y(v) }),
      svg("text", { class: "ylabel", x: m.l - 8, y: +y(v) + 4 }, v ? label(v) : "0"));
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
  const what = (p) => [show(p.v), p.e.status === "failed" && " (failed)", p.e.suspect_reason && ` (suspect: ${p.e.suspect_reason})`].filter(Boolean).join("");
  build(chart, {}, [svg("path", { class: "area", d: `${line}L${x(last.t)},${y(0)}L${x(first.t)},${y(0)}Z` }), svg("path", { class: "line", d: line }),
    points.map((p) => svg("circle", { class: `dot${p.e.suspect_reason ? " suspect" : p.e.status === "failed" ? " bad" : ""}`, cx: x(p.t), cy: y(p.v), r: p.e.suspect_reason ? 5 : 3.5 },
      svg("title", {}, `${utc(new Date(p.t))}: ${what(p)}`))),
    marks.map((p) => svg("path", {
      class: `m-${p.status}`,
      d: p.status === "failed" ? `M${x(p.t) - 4},${height - m.b - 12}l8,8m0,-8l-8,8` : `M${x(p.t)},${height - m.b - 13}l5,9h-10z`,
    }, svg("title", {}, `${utc(new Date(p.t))}: ${p.status}`)))]);
  return chart;
}

// ---- managing (admin token only; DESIGN §15) ----

/** `url` as an absolute address: the API answers a path alone when `server.public_url` is not
 * set, and then the page's own origin is the server's address. */
const absolute = (url) => new URL(url, location.origin).href;
/** `word` quoted for a POSIX shell when it needs to be. */
const shell = (word) => (/^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, "'\\''")}'`);

/** A read-only line and a button that copies it; where the browser refuses the clipboard,
 * the text is selected for the person to copy. */
function copyRow(text, key, label) {
  const id = `copy-${key}`;
  const multiline = text.length > 70;
  const field = multiline
    ? el("textarea", { id, class: "copy-text", readonly: "", rows: String(Math.min(4, Math.ceil(text.length / 70))), spellcheck: "false", "aria-label": label, "data-copy": key })
    : el("input", { id, class: "copy-text", readonly: "", value: text, spellcheck: "false", "aria-label": label, "data-copy": key });
  if (multiline) field.value = text;
  return el("div", { class: "copy" }, field,
    el("button", { type: "button", class: "secondary", "data-copies": id, "aria-label": `Copy: ${label}` }, "Copy"));
}

async function copy(button) {
  const field = $(button.dataset.copies);
  if (!field) return;
  try {
    await navigator.clipboard.writeText(field.value);
    notice("Copied to the clipboard.");
  } catch {
    field.focus();
    field.select();
    notice("The browser does not let this page use the clipboard: the text is selected, press Ctrl+C (\u2318C) to copy it.");
  }
}

/** A modal question naming what it is about; resolves true when the person confirms. */
function confirmDialog(title, text, ok) {
  const dialog = $("confirm");
  $("confirm-title").textContent = title;
  $("confirm-text").textContent = text;
  $("confirm-ok").textContent = ok;
  dialog.returnValue = "";
  answerQuestion?.(false); // a question still open is answered no
  return new Promise((resolve) => {
    answerQuestion = resolve;
    dialog.showModal();
    $("confirm-cancel").focus();
  });
}
let answerQuestion = null;
// The close event comes a moment after the dialog closed: one still due from the last
// question, arriving once the next is open, must not answer it.
$("confirm").addEventListener("close", () => {
  const dialog = $("confirm");
  if (dialog.open || !answerQuestion) return;
  const answer = answerQuestion;
  answerQuestion = null;
  answer(dialog.returnValue === "ok");
});

/** The error of a change that failed, in a sentence. */
const failure = (what, error) => (error.status === 403 ? `${what}: this token may not change anything (${reason(error)}).` : `${what}: ${reason(error)}.`);

/** Runs a change (`action` answers the changed job or nothing); a refused token asks again. */
async function change(what, action) {
  try {
    return await action();
  } catch (error) {
    if (error instanceof Refused) return askForToken(REFUSED);
    show($("job-error"), failure(what, error));
    $("job-error").focus?.();
    return undefined;
  }
}

/** "2026-12-01T08:00" in the browser's zone, for a datetime-local input. */
const localInput = (date) => `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}T${pad(date.getHours())}:${pad(date.getMinutes())}`;
const localText = (date) => new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" }).format(date);

/** A job's schedule as the five fields of a crontab line, when a crontab can say it. */
function cronFields(job) {
  if (job.schedule) return job.schedule;
  const [h, m] = [job.expected_hour_utc, job.expected_minute_utc];
  return {
    hourly: `${m} * * * *`, daily: `${m} ${h} * * *`, weekly: `${m} ${h} * * ${(job.expected_weekday + 1) % 7}`, monthly: `${m} ${h} ${job.expected_day_of_month} * *`,
  }[job.backup_frequency] || `${m} ${h} * * *`;
}

/** The job view's controls for an admin: edit, pause, snooze, delete, and the ping URL. */
function renderManage(job) {
  if (role !== "admin") return;
  $("job-actions").hidden = $("ping").hidden = false;
  $("edit-link").href = `#edit=${job.id}`;
  $("edit-link").setAttribute("aria-label", `Edit job ${job.database_name}`);
  $("pause").textContent = job.is_active ? "Pause" : "Resume";
  $("pause").setAttribute("aria-label", `${job.is_active ? "Pause" : "Resume"} job ${job.database_name}`);
  $("delete").setAttribute("aria-label", `Delete job ${job.database_name}`);
  const until = job.snoozed_until ? new Date(job.snoozed_until) : null;
  const snoozed = until && until > new Date();
  $("unsnooze").hidden = !snoozed;
  fill($("job-snoozed"), snoozed && [el("strong", {}, "Snoozed: "), `its alerts are recorded but not sent until ${localText(until)} (${utc(until)}).`]);
  $("job-snoozed").hidden = !snoozed;
  if (!$("snooze-until").value) $("snooze-until").value = localInput(new Date(Date.now() + 864e5 - (Date.now() % 36e5)));

  const url = absolute(job.ping_url);
  const zone = job.schedule ? job.timezone : "UTC";
  fill($("ping-lines"),
    el("h3", {}, "The job\u2019s ping URL"), copyRow(url, "ping-url", `Ping URL of ${job.database_name}`),
    el("h3", {}, "A crontab line"), copyRow(`${cronFields(job)} your-backup-command && curl -fsS -m 10 --retry 5 -o /dev/null ${url}`, "crontab", `Crontab line for ${job.database_name}`),
    el("p", { class: "hint" }, `Put the backup command in place of your-backup-command: the ping is sent only when it succeeds. The times are ${zone}: `
      + `where the host\u2019s clock is in another zone, set CRON_TZ=${zone} on the line above (cronie) or shift the hour.`));
  $("rotate").setAttribute("aria-label", `Replace the ping URL of ${job.database_name}`);
}

/** After a change: the job as answered, the statuses and the view. */
async function changed(job, message) {
  changesMade += 1; // a load begun before the change must not show the job as it was
  if (job && jobData && jobData.job.id === job.id) {
    jobData.job = job;
    renderJob();
  }
  notice(message);
  await inFlight?.catch(() => {});
  await refresh();
}

async function togglePause() {
  const job = jobData?.job;
  if (!job) return;
  const resumed = !job.is_active;
  const updated = await change(resumed ? "Could not resume the job" : "Could not pause the job",
    async () => (await api(`/api/v1/jobs/${job.id}`, "PATCH", { is_active: resumed })).json());
  if (updated) await changed(updated, resumed ? `Resumed job ${job.database_name}: its next slot counts again.` : `Paused job ${job.database_name}: it is never late while paused.`);
}

async function snooze(until) {
  const job = jobData?.job;
  if (!job) return;
  const updated = await change(until ? "Could not snooze the job" : "Could not end the snooze",
    async () => (await api(`/api/v1/jobs/${job.id}`, "PATCH", { snoozed_until: until ? until.toISOString() : null })).json());
  if (updated && until && !updated.snoozed_until) {
    return show($("job-error"), "Could not snooze the job: this server does not keep a snooze (its answer has no snoozed_until).");
  }
  if (updated) await changed(updated, until ? `Snoozed job ${job.database_name} until ${localText(until)} (${utc(until)}).` : `Job ${job.database_name} is no longer snoozed.`);
}

async function deleteJob() {
  const job = jobData?.job;
  if (!job) return;
  const sure = await confirmDialog(`Delete job ${job.database_name}?`,
    `Job ${job.database_name} (${job.company_name}, ${job.city}, job #${job.id}) is deleted with all its entries and alerts. This cannot be undone.`,
    `Delete ${job.database_name}`);
  if (!sure) return $("delete").focus();
  // A refresh under way would ask for the job once more after it is gone.
  await inFlight?.catch(() => {});
  const gone = await change("Could not delete the job", async () => (await api(`/api/v1/jobs/${job.id}`, "DELETE")).json());
  if (!gone) return undefined;
  history.pushState(null, "", location.pathname + location.search);
  route();
  notice(`Deleted job ${job.database_name} (${job.company_name}, ${job.city}).`);
  $("notice").focus();
  return refresh();
}

async function rotatePingKey() {
  const job = jobData?.job;
  if (!job) return;
  const sure = await confirmDialog(`Replace the ping URL of ${job.database_name}?`,
    "The current URL stops working at once: every backup tool that uses it must be given the new one.", "Replace the URL");
  if (!sure) return $("rotate").focus();
  const updated = await change("Could not replace the ping URL", async () => (await api(`/api/v1/jobs/${job.id}/ping_key`, "POST")).json());
  if (updated) await changed(updated, `Job ${job.database_name} has a new ping URL; the old one no longer works.`);
  return $("copy-ping-url")?.focus();
}

// ---- the job form ----

const OPTIONAL = "(optional)";
/** The form's fields, following the API's (DESIGN §2, §10, §11). `when`: the schedule kinds
 * that use the field. */
const FIELDS = [
  { group: "What is backed up" },
  { name: "database_name", label: "Database", required: true },
  { name: "company_name", label: "Company", required: true, list: "companies-known" },
  { name: "city", label: "City or site", required: true },
  { name: "agent_id_responsible", label: "Agent id", required: true, list: "agents", hint: "The agent (host) that runs this backup; its agent token reports for it." },
  { group: "When" },
  { name: "backup_frequency", label: "Schedule", type: "select", options: [["daily", "Daily (UTC)"], ["hourly", "Hourly"], ["weekly", "Weekly (UTC)"], ["monthly", "Monthly (UTC)"], ["cron", "A cron expression in a time zone"]] },
  { name: "expected_hour_utc", required: true, label: "Hour (UTC, 0\u201323)", type: "number", min: 0, max: 23, when: ["daily", "weekly", "monthly"] },
  { name: "expected_minute_utc", required: true, label: "Minute (0\u201359)", type: "number", min: 0, max: 59, when: ["hourly", "daily", "weekly", "monthly"] },
  { name: "expected_weekday", label: "Day of the week", type: "select", options: DAYS.map((d, i) => [String(i), d]), when: ["weekly"] },
  { name: "expected_day_of_month", required: true, label: "Day of the month (1\u201331)", type: "number", min: 1, max: 31, when: ["monthly"], hint: "A shorter month uses its last day." },
  { name: "schedule", required: true, label: "Cron expression", when: ["cron"], hint: "minute hour day-of-month month day-of-week, e.g. 0 22 * * 1-5" },
  { name: "timezone", label: "Time zone", when: ["cron"], hint: "An IANA name, e.g. Europe/Paris; default UTC." },
  { name: "grace_minutes", label: "Grace (minutes)", type: "number", min: 1, max: 1440, hint: "How late a backup may be before it counts as late; empty: the server\u2019s default." },
  { name: "is_active", label: "Active (unticked: paused, never late)", type: "checkbox" },
  { group: "Where the file lands" },
  { name: "final_storage_path_template", label: "Storage path template", required: true, wide: true, hint: "Placeholders {database_name} {company_name} {city} {agent_id_responsible} {job_id} and %Y %m %d %H %M." },
  { group: "Alerts and content checks" },
  { name: "notify_emails", label: "Also alert these addresses", type: "textarea", wide: true, hint: "One per line or separated by commas; empty: only the global recipients." },
  { name: "max_duration_minutes", label: "Longest run (minutes)", type: "number", min: 1, max: 10080, hint: "A run still going after this raises a hung alert; empty: no limit." },
  { name: "min_size_bytes", label: "Smallest size (bytes)", type: "number", min: 0, hint: "A smaller success is suspect; 1 refuses empty dumps." },
  { name: "size_drop_percent", label: "Size drop (%)", type: "number", min: 1, max: 99, hint: "A success this much smaller than the median of the previous 10 is suspect; empty: off." },
  { name: "stale_hash_check", label: "Suspect a backup whose hash equals the previous one", type: "checkbox" },
];
const FIELD_NAMES = FIELDS.filter((f) => f.name).map((f) => f.name);
const NULLABLE = ["max_duration_minutes", "size_drop_percent"];
const fieldLabel = (name) => FIELDS.find((f) => f.name === name)?.label || name;

/** Builds the form's fields once. */
function buildForm() {
  const form = $("job-form");
  if (form.elements.length) return;
  let grid = null;
  for (const f of FIELDS) {
    if (f.group) {
      grid = el("div", { class: "grid" });
      form.append(el("fieldset", {}, el("legend", {}, f.group), grid));
      continue;
    }
    const id = `f-${f.name}`;
    const described = [f.hint && `${id}-hint`, `${id}-error`].filter(Boolean).join(" ");
    let input;
    if (f.type === "select") {
      input = el("select", { id, name: f.name, "aria-describedby": described }, f.options.map(([value, text]) => el("option", { value }, text)));
    } else if (f.type === "textarea") {
      input = el("textarea", { id, name: f.name, rows: "2", "aria-describedby": described, spellcheck: "false" });
    } else if (f.type === "checkbox") {
      input = el("input", { id, name: f.name, type: "checkbox", "aria-describedby": described });
    } else {
      input = el("input", {
        id, name: f.name, type: f.type || "text", inputmode: f.type === "number" ? "numeric" : null, min: f.min, max: f.max, step: f.type === "number" ? "1" : null,
        list: f.list, "aria-required": f.required ? "true" : null, spellcheck: "false", autocapitalize: "off",
      });
      input.setAttribute("aria-describedby", described);
    }
    const label = el("label", { for: id }, f.label, f.required || f.type === "checkbox" || f.type === "select" ? "" : el("span", { class: "opt" }, ` ${OPTIONAL}`));
    grid.append(el("div", { class: `fld${f.type === "checkbox" ? " check" : ""}${f.wide ? " wide" : ""}`, "data-field": f.name },
      ...(f.type === "checkbox" ? [input, label] : [label, input]),
      f.hint && el("p", { id: `${id}-hint`, class: "hint" }, f.hint),
      el("p", { id: `${id}-error`, class: "field-error", hidden: "" })));
  }
  form.append(el("datalist", { id: "companies-known" }),
    el("p", { class: "buttons" }, el("button", { type: "submit", id: "save" }, "Save"), " ", el("a", { class: "button secondary", id: "cancel-edit", href: "/" }, "Cancel")));
  form.elements.backup_frequency.addEventListener("change", showScheduleFields);
}

function showScheduleFields() {
  const kind = $("job-form").elements.backup_frequency.value;
  for (const f of FIELDS.filter((x) => x.when)) document.querySelector(`[data-field="${f.name}"]`).hidden = !f.when.includes(kind);
}

/** Fills the form with `job` (null: a new job's defaults). */
function fillForm(job) {
  const e = $("job-form").elements;
  const text = (v) => (v == null ? "" : String(v));
  for (const name of FIELD_NAMES) {
    const input = e[name];
    if (input.type === "checkbox") input.checked = job ? Boolean(job[name]) : true;
    else input.value = "";
  }
  if (job) {
    for (const name of FIELD_NAMES) if (e[name].type !== "checkbox" && name !== "notify_emails") e[name].value = text(job[name]);
    e.notify_emails.value = (job.notify_emails || []).join(", ");
    e.backup_frequency.value = job.schedule ? "cron" : job.backup_frequency;
    if (job.schedule) e.expected_hour_utc.value = e.expected_minute_utc.value = "";
  } else {
    e.backup_frequency.value = "daily";
    e.expected_weekday.value = "0";
    e.timezone.value = "UTC";
    e.min_size_bytes.value = "1";
    e.size_drop_percent.value = "50";
    e.final_storage_path_template.value = "/backups/{company_name}/{city}/{database_name}/%Y-%m-%d.dump";
  }
  showScheduleFields();
}

/** The body the form says: numbers as numbers (text that is none is sent as typed, for the
 * API to name), empty optional fields left out, or null where null means "off". */
function formBody() {
  const e = $("job-form").elements;
  const value = (name) => e[name].value.trim();
  const number = (name) => {
    const v = value(name);
    if (v === "") return NULLABLE.includes(name) ? null : undefined;
    return /^-?\d+$/.test(v) ? Number(v) : v;
  };
  const kind = value("backup_frequency");
  const body = {
    database_name: value("database_name"), company_name: value("company_name"), city: value("city"),
    agent_id_responsible: value("agent_id_responsible"), final_storage_path_template: value("final_storage_path_template"),
    grace_minutes: number("grace_minutes"), is_active: e.is_active.checked,
    notify_emails: value("notify_emails").split(/[\s,;]+/).filter(Boolean),
    max_duration_minutes: number("max_duration_minutes"), min_size_bytes: number("min_size_bytes"),
    size_drop_percent: number("size_drop_percent"), stale_hash_check: e.stale_hash_check.checked,
  };
  if (kind === "cron") {
    Object.assign(body, { schedule: value("schedule"), timezone: value("timezone") || "UTC" });
  } else {
    Object.assign(body, {
      backup_frequency: kind, expected_hour_utc: kind === "hourly" ? (number("expected_hour_utc") ?? 0) : number("expected_hour_utc"),
      expected_minute_utc: number("expected_minute_utc"), timezone: "UTC",
    });
    if (kind === "weekly") body.expected_weekday = Number(value("expected_weekday"));
    if (kind === "monthly") body.expected_day_of_month = number("expected_day_of_month");
  }
  for (const [k, v] of Object.entries(body)) if (v === undefined) delete body[k];
  return body;
}

/** For an edit, only what changed (PATCH); switching a cron job back to the seed's form
 * sends the seed's schedule fields and `schedule: null` together, as the API asks. */
function changes(body, job) {
  const out = {};
  for (const [k, v] of Object.entries(body)) if (JSON.stringify(v) !== JSON.stringify(job[k] ?? (NULLABLE.includes(k) ? null : undefined))) out[k] = v;
  if (job.schedule && !body.schedule) {
    Object.assign(out, { schedule: null, backup_frequency: body.backup_frequency, expected_hour_utc: body.expected_hour_utc, expected_minute_utc: body.expected_minute_utc });
  }
  if (!job.schedule && body.schedule) delete out.backup_frequency;
  return out;
}

function clearFieldErrors(form, summary) {
  for (const node of form.querySelectorAll(".field-error")) { node.textContent = ""; node.hidden = true; }
  for (const node of form.querySelectorAll("[aria-invalid]")) node.removeAttribute("aria-invalid");
  fill(summary);
  summary.hidden = true;
}

/** Shows a 422's messages beside the fields they name (`prefix` + field is the input's id),
 * and the rest, with a count, in `summary` (role="alert"); what was typed stays. */
function showFieldErrors(form, summary, error, prefix, what, labelOf) {
  const unplaced = [];
  const named = new Set();
  let first = null;
  for (const item of error.fields || []) {
    const [where, field, index] = item.loc || [];
    const input = where === "body" && typeof field === "string" ? $(`${prefix}${field}`) : null;
    const message = `${typeof index === "number" ? `Item ${index + 1}: ` : ""}${String(item.msg || "").replace(/^Value error, /, "")}`;
    if (!input || input.closest("[hidden]")) {
      unplaced.push(field ? `${labelOf(field)}: ${message}` : message);
      continue;
    }
    const box = $(`${prefix}${field}-error`);
    box.textContent = box.textContent ? `${box.textContent} ${message}` : message;
    box.hidden = false;
    input.setAttribute("aria-invalid", "true");
    named.add(labelOf(field));
    first ||= input;
  }
  const detail = typeof error.detail === "string" ? error.detail : error.fields ? "" : reason(error);
  fill(summary, el("strong", {}, `${what} `),
    named.size ? `${plural(named.size, "field")} ${named.size === 1 ? "needs" : "need"} attention: ${[...named].join(", ")}.` : "",
    unplaced.length || detail ? el("ul", {}, [...unplaced, detail].filter(Boolean).map((m) => el("li", {}, m))) : "");
  summary.hidden = false;
  (first || summary).focus?.();
}

async function openEditor(id) {
  buildForm();
  editing = null;
  showSection("editor");
  const form = $("job-form");
  clearFieldErrors(form, $("editor-error"));
  fill($("companies-known"), [...new Set((statuses || []).map((s) => s.company_name))].sort(compare).map((c) => el("option", { value: c })));
  fillAgents();
  $("editor-title").textContent = id ? `Edit job #${id}` : "Add a job";
  $("editor-where").textContent = "";
  document.title = `${id ? "Edit a job" : "Add a job"} \u00b7 backup-monitor`;
  $("cancel-edit").href = id ? `#job=${id}` : "/";
  $("cancel-edit").classList.toggle("home", !id);
  fillForm(null);
  scrollTo(0, 0);
  $("editor-title").focus();
  if (!id) return;
  try {
    const job = await (await api(`/api/v1/jobs/${id}`)).json();
    if (!hashParams().has("edit")) return;
    editing = job;
    $("editor-title").textContent = `Edit ${job.database_name}`;
    $("editor-where").textContent = `${job.company_name} \u00b7 ${job.city} \u00b7 job #${job.id}`;
    fillForm(job);
  } catch (error) {
    if (error instanceof Refused) return askForToken(REFUSED);
    showFieldErrors(form, $("editor-error"), error, "f-", `Could not load job #${id}:`, fieldLabel);
  }
}

async function saveJob(event) {
  event.preventDefault();
  const form = $("job-form");
  const summary = $("editor-error");
  clearFieldErrors(form, summary);
  const body = formBody();
  const job = editing;
  const sent = job ? changes(body, job) : body;
  if (job && !Object.keys(sent).length) {
    notice(`Nothing to save: job ${job.database_name} is unchanged.`);
    history.pushState(null, "", `#job=${job.id}`);
    return route();
  }
  $("save").disabled = true;
  try {
    const saved = await (await api(job ? `/api/v1/jobs/${job.id}` : "/api/v1/jobs/", job ? "PATCH" : "POST", sent)).json();
    history.pushState(null, "", `#job=${saved.id}`);
    route();
    notice(job ? `Saved job ${saved.database_name}.` : `Created job ${saved.database_name} (#${saved.id}). Its ping URL and the agent\u2019s commands are below.`);
    await refresh();
  } catch (error) {
    if (error instanceof Refused) return askForToken(REFUSED);
    showFieldErrors(form, summary, error, "f-", job ? "The job was not saved." : "The job was not created.", fieldLabel);
  } finally {
    $("save").disabled = false;
  }
  return undefined;
}

// ---- tokens ----

function fillAgents() {
  fill($("agents"), [...new Set((statuses || []).map((s) => s.agent_id_responsible))].sort(compare).map((a) => el("option", { value: a })));
}

function openTokens() {
  showSection("tokens");
  document.title = "Tokens \u00b7 backup-monitor";
  clearFieldErrors($("token-form"), $("token-error"));
  fillAgents();
  showAgentField();
  scrollTo(0, 0);
  $("tokens-title").focus();
  return loadTokens();
}

function showAgentField() {
  $("t-agent-field").hidden = $("t-role").value !== "agent";
}

async function loadTokens() {
  try {
    const list = await (await api("/api/v1/tokens")).json();
    renderTokens(list);
  } catch (error) {
    if (error instanceof Refused) return askForToken(REFUSED);
    fill($("token-list"), el("p", { class: "error" }, `Could not load the tokens: ${reason(error)}.`));
  }
  return undefined;
}

function renderTokens(list) {
  if (!list.length) return fill($("token-list"), el("p", { class: "muted" }, "No stored token (the admin token may come from BACKUP_MONITOR_ADMIN_TOKEN)."));
  const heads = ["Id", "Role", "Agent", "Name", "Created", ""];
  return fill($("token-list"), el("table", { class: "cards tokens" }, el("thead", {}, el("tr", {}, heads.map((h) => el("th", { scope: "col" }, h)))),
    el("tbody", {}, list.map((t) => el("tr", { "data-token-id": t.id, class: t.revoked_at ? "revoked" : null },
      cell("Id", "c-id", `#${t.id}`), cell("Role", "c-role", t.role), cell("Agent", "c-agent", t.agent_id), cell("Name", "c-name", t.name),
      cell("Created", "c-when", utc(new Date(t.created_at))),
      cell("State", "c-act", t.revoked_at ? el("span", { class: "muted" }, `revoked ${utc(new Date(t.revoked_at))}`)
        : el("button", { type: "button", class: "danger", "data-revoke": t.id, "data-name": t.name, "data-role": t.role, "aria-label": `Revoke token #${t.id} ${t.name}` }, "Revoke\u2026")))))));
}

async function createToken(event) {
  event.preventDefault();
  const form = $("token-form");
  const summary = $("token-error");
  clearFieldErrors(form, summary);
  const e = form.elements;
  const body = { role: e.role.value, name: e.name.value.trim() };
  if (body.role === "agent") body.agent_id = e.agent_id.value.trim();
  try {
    const created = await (await api("/api/v1/tokens", "POST", body)).json();
    form.reset();
    showAgentField();
    showCreated(created);
    await loadTokens();
  } catch (error) {
    if (error instanceof Refused) return askForToken(REFUSED);
    const labels = { role: "Role", agent_id: "Agent id", name: "Name" };
    showFieldErrors(form, summary, error, "t-", "The token was not created.", (f) => labels[f] || f);
  }
  return undefined;
}

/** The secret, once, with the lines an agent host runs with it. */
function showCreated(t) {
  const box = $("token-created");
  const server = location.origin;
  const lines = [];
  if (t.role === "agent") {
    const jobs = (statuses || []).filter((s) => s.agent_id_responsible === t.agent_id).sort((a, b) => a.job_id - b.job_id);
    const job = jobs[0];
    const id = job ? String(job.job_id) : "JOB_ID";
    const env = `BACKUP_MONITOR_URL=${shell(server)} BACKUP_MONITOR_TOKEN=${shell(t.secret)}`;
    lines.push(el("p", {}, job ? `For job #${job.job_id} (${job.database_name}, ${job.company_name}, ${job.city})${jobs.length > 1 ? `; for its other jobs (${jobs.slice(1).map((j) => `#${j.job_id} ${j.database_name}`).join(", ")}) change the job id` : ""}:`
      : `Agent ${t.agent_id} has no job yet: add one, then put its id in place of JOB_ID.`),
    el("h3", {}, "Report a backup"), copyRow(`${env} backup-monitor report --job-id ${id} --status success`, "report", "backup-monitor report line"),
    el("h3", {}, "Run a backup and report how it went"), copyRow(`${env} backup-monitor exec --job-id ${id} -- your-backup-command`, "exec", "backup-monitor exec line"),
    el("h3", {}, "Report with curl"), copyRow(`curl -fsS -m 10 --retry 5 -H ${shell(`Authorization: Bearer ${t.secret}`)} -H 'Content-Type: application/json' -d ${shell(`{"expected_job_id": ${id}, "status": "success"}`)} ${shell(`${server}/api/v1/entries/`)}`, "curl", "curl line"));
  } else {
    lines.push(el("h3", {}, "Read the status with curl"),
      copyRow(`curl -fsS -H ${shell(`Authorization: Bearer ${t.secret}`)} ${shell(`${server}/api/v1/status`)}`, "curl", "curl line"));
  }
  fill(box, el("h2", { id: "token-created-title" }, `Created ${t.role} token #${t.id}: ${t.name}`),
    el("p", { class: "note s-late" }, el("strong", {}, "Copy the secret now: "), "it is shown only this once, and stored only as a hash."),
    copyRow(t.secret, "secret", `Secret of token ${t.name}`), ...lines);
  box.hidden = false;
  box.focus();
}

async function revokeToken(button) {
  const id = Number(button.dataset.revoke);
  const sure = await confirmDialog(`Revoke token #${id} (${button.dataset.name})?`,
    `The ${button.dataset.role} token #${id} \u201c${button.dataset.name}\u201d stops working at once; whatever uses it is refused from now on.`, "Revoke");
  if (!sure) return button.focus();
  try {
    await api(`/api/v1/tokens/${id}`, "DELETE");
    notice(`Revoked token #${id} (${button.dataset.name}).`);
    $("token-created").hidden = true;
    await loadTokens();
  } catch (error) {
    if (error instanceof Refused) return askForToken(REFUSED);
    show($("token-error"), `Could not revoke token #${id}: ${reason(error)}.`);
  }
  return $("tokens-title").focus();
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
$("job-form").addEventListener("submit", saveJob);
$("token-form").addEventListener("submit", createToken);
$("t-role").addEventListener("change", showAgentField);
$("pause").addEventListener("click", togglePause);
$("delete").addEventListener("click", deleteJob);
$("rotate").addEventListener("click", rotatePingKey);
$("unsnooze").addEventListener("click", () => snooze(null));
$("snooze-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const input = $("snooze-until");
  const until = new Date(input.value);
  const wrong = Number.isNaN(until.getTime()) ? "Choose a date and time to snooze until." : until <= new Date() ? "Choose a time in the future." : "";
  show($("snooze-until-error"), wrong);
  input.toggleAttribute("aria-invalid", Boolean(wrong));
  if (wrong) return input.focus();
  return snooze(until);
});
document.addEventListener("click", (event) => {
  const copier = event.target.closest("button[data-copies]");
  if (copier) copy(copier);
  const revoke = event.target.closest("button[data-revoke]");
  if (revoke) revokeToken(revoke);
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
