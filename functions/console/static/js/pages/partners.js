// Partners: event subscriptions, each with its delivery log (every attempt), the endpoint's
// health, pause and resume, retry and replay. A partner key sees and changes only its own (the
// API decides); staff see their tenant's and change none. A signing secret is shown once, right
// after creation or rotation, and kept nowhere: leaving the page forgets it.
import { api, withQuery } from "../api.js";
import { act, errorBox, field, h, json, notice, replace, select, svg, table, when } from "../ui.js";

const STATUSES = ["active", "paused", "failing", "disabled"];
const REFRESH_EVERY_MS = 5000;
const SOON_MS = [700, 1500, 3000]; // after a retry or replay: its attempts are usually made by then
const HEALTH_SAMPLE = 100; // the latest attempts the health card is computed from
const CHART_SLOTS = 50; // the latest attempts drawn as bars
let flash = null; // what the last action said, shown once on the page it returned to (never a secret)

export async function render(main, context) {
  if (context.parts[0]) return renderSubscription(main, context, context.parts[0]);
  return renderList(main, context);
}

function mayCreate(whoami) {
  return whoami.role === "admin" || whoami.role === "partner";
}

function mayManage(whoami, subscription) {
  if (whoami.role === "partner") return true; // it sees only its own
  return whoami.role === "admin" && (whoami.tenant === "*" || whoami.tenant === subscription.tenant);
}

function statusTag(status) {
  const kind = { active: "good", paused: "warn", failing: "bad", disabled: "bad" }[status] || "";
  return h("span", { class: `tag ${kind}` }, status);
}

function patternSummary(pattern) {
  const types = pattern["detail-type"];
  const text = Array.isArray(types) ? types.join(", ") : JSON.stringify(pattern);
  return text.length > 60 ? `${text.slice(0, 59)}…` : text;
}

function takeFlash() {
  const shown = flash;
  flash = null;
  return shown ? notice(shown) : null;
}

// --- the list -------------------------------------------------------------------------------

async function renderList(main, context) {
  const params = context.params;
  const operator = context.whoami.tenant === "*";
  const form = h(
    "form",
    { class: "card filters", role: "search", "aria-label": "Subscription filters" },
    operator ? field("Tenant", h("input", { name: "tenant", value: params.get("tenant") || "", required: true })) : null,
    field("Status", select("status", STATUSES, params.get("status"))),
    field("URL or description contains", h("input", { name: "q", value: params.get("q") || "", size: 18 })),
    h("button", { type: "submit" }, "Apply"),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const chosen = new FormData(form);
    const query = new URLSearchParams();
    for (const name of ["tenant", "status", "q"]) if (chosen.get(name)) query.set(name, chosen.get(name));
    context.go(`#/partners?${query}`);
  });
  const output = h("div", { "aria-live": "polite" });
  const more = h("button", { type: "button", class: "secondary", hidden: true }, "More subscriptions");
  const intro =
    context.whoami.role === "partner"
      ? h("p", { class: "muted" }, "The subscriptions this key made: where the hub sends events, and how those deliveries went.")
      : h("p", { class: "muted" }, "Partners' endpoints the hub sends events to, with their delivery logs.");
  replace(main, h("h1", {}, "Partners"), takeFlash(), intro, form, output, h("p", {}, more));
  if (operator && !params.get("tenant")) {
    replace(output, notice("An operator key spans tenants: name one to list its subscriptions."));
    return undefined;
  }
  let rows = [];
  let cursor = null;
  const open = (s) => context.go(`#/partners/${encodeURIComponent(s.id)}`);
  async function load() {
    const page = await api("GET", withQuery("/admin/subscriptions", { tenant: params.get("tenant"), cursor, limit: 100 }));
    rows = rows.concat(page.subscriptions);
    cursor = page.next_cursor;
    more.hidden = !cursor;
    replace(output, subscriptionTable(rows.filter((s) => matches(s, params)), open));
  }
  more.addEventListener("click", () => act(more, output, load));
  try {
    await load();
  } catch (error) {
    replace(output, errorBox(error));
  }
  if (mayCreate(context.whoami)) main.append(createForm(context));
  return undefined;
}

function matches(subscription, params) {
  if (params.get("status") && subscription.status !== params.get("status")) return false;
  const words = (params.get("q") || "").trim().toLowerCase();
  return !words || `${subscription.url} ${subscription.description}`.toLowerCase().includes(words);
}

function subscriptionTable(rows, open) {
  return table(
    [
      { label: "Endpoint", value: (s) => h("code", {}, s.url) },
      { label: "Description", value: (s) => s.description },
      { label: "Events", value: (s) => patternSummary(s.event_pattern) },
      { label: "Status", value: (s) => statusTag(s.status) },
      { label: "Id", value: (s) => h("code", {}, s.id) },
      { label: "Created", value: (s) => when(s.created_at) },
    ],
    rows,
    open,
  );
}

// A JSON object typed into a textarea, or a problem naming the field.
function parseObject(text, name) {
  try {
    const value = JSON.parse(text);
    if (value && typeof value === "object" && !Array.isArray(value)) return { value };
  } catch (error) {
    return { problem: { message: `${name} is not JSON: ${error.message}` } };
  }
  return { problem: { message: `${name} must be a JSON object` } };
}

// The subscription form, for a new one (`values` empty) or a change: `onSubmit(body, submit, output,
// form)` gets the fields and the parsed pattern, or the form shows why the pattern is not JSON.
function subscriptionForm({ id, title, values = {}, patternLabel, submitLabel }, onSubmit) {
  const output = h("div", { "aria-live": "polite" });
  const submit = h("button", { type: "submit" }, submitLabel);
  const patternId = `${id}-pattern`;
  const pattern = h("textarea", { name: "event_pattern", id: patternId, rows: 6, spellcheck: "false" }, JSON.stringify(values.event_pattern || { "detail-type": ["message.received"] }, null, 2));
  const form = h(
    "form",
    { class: "card", "aria-labelledby": id },
    h("h2", { id }, title),
    h(
      "div",
      { class: "filters" },
      field("Endpoint URL", h("input", { name: "url", type: "url", required: true, size: 34, value: values.url, placeholder: "https://partner.example/hooks" })),
      field("Description", h("input", { name: "description", maxlength: 500, value: values.description })),
      h("label", { class: "inline" }, h("input", { type: "checkbox", name: "ordered", checked: Boolean(values.ordered) }), "Ordered per conversation"),
    ),
    h("label", { for: patternId }, patternLabel),
    pattern,
    h("p", {}, submit),
    output,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const parsed = parseObject(pattern.value, "the event pattern");
    if (parsed.problem) return replace(output, errorBox(parsed.problem));
    const chosen = new FormData(form);
    const body = { url: chosen.get("url"), description: chosen.get("description") || "", ordered: Boolean(chosen.get("ordered")), event_pattern: parsed.value };
    return onSubmit(body, submit, output, form);
  });
  return form;
}

function createForm(context) {
  return subscriptionForm(
    { id: "new-subscription", title: "New subscription", patternLabel: "Event pattern (EventBridge syntax; the tenant is added by the hub)", submitLabel: "Subscribe" },
    async (body, submit, output, form) => {
      if (context.whoami.tenant === "*") body.tenant = context.params.get("tenant");
      const created = await act(submit, output, () => api("POST", "/admin/subscriptions", body));
      if (!created) return;
      form.reset();
      replace(
        output,
        secretShownOnce(created.secret, "Subscribed."),
        h("p", {}, h("a", { href: `#/partners/${encodeURIComponent(created.id)}` }, `Open ${created.id}`)),
      );
    },
  );
}

// The signing secret, this once: the API never answers it again and the console keeps no copy.
function secretShownOnce(secret, what) {
  const copied = h("span", { class: "muted", "aria-live": "polite" });
  const copy = h("button", { type: "button", class: "secondary" }, "Copy");
  copy.addEventListener("click", async () => {
    try {
      await navigator.clipboard.writeText(secret);
      copied.textContent = "copied";
    } catch {
      copied.textContent = "select the secret and copy it";
    }
  });
  return h(
    "div",
    { class: "notice", role: "status" },
    h("p", {}, what, " The signing secret, shown only now: store it with the endpoint, which verifies each delivery with it (Standard Webhooks)."),
    h("p", { class: "row" }, h("code", { class: "secret" }, secret), copy, copied),
  );
}

// --- one subscription -----------------------------------------------------------------------

async function renderSubscription(main, context, id) {
  const path = `/admin/subscriptions/${encodeURIComponent(id)}`;
  const eventId = context.params.get("event");
  const [subscription, recent, filtered] = await Promise.all([
    api("GET", path),
    api("GET", withQuery(`${path}/deliveries`, { limit: HEALTH_SAMPLE })),
    eventId ? api("GET", withQuery(`${path}/deliveries`, { event_id: eventId, limit: 100 })) : null,
  ]);
  const manage = mayManage(context.whoami, subscription);
  const here = `#/partners/${encodeURIComponent(id)}`;
  const output = h("div", { "aria-live": "polite" });
  const healthCard = h("section", { class: "card", "aria-labelledby": "health" });
  const log = h("div", { "aria-live": "polite" });
  const secretVersion = h("dd", {}, subscription.secret_version);
  let refreshSoon = () => {}; // set once the log is shown
  replace(healthCard, h("h2", { id: "health" }, "Endpoint health"), healthView(subscription, recent.attempts));

  replace(
    main,
    h("p", {}, h("a", { href: "#/partners" }, "← Partners")),
    h("h1", {}, subscription.description || "Subscription", " ", statusTag(subscription.status)),
    takeFlash(),
    output,
    h(
      "div",
      { class: "grid2" },
      h(
        "section",
        { class: "card", "aria-labelledby": "facts" },
        h("h2", { id: "facts" }, "Subscription"),
        h(
          "dl",
          { class: "facts" },
          h("dt", {}, "id"), h("dd", {}, h("code", {}, subscription.id)),
          h("dt", {}, "endpoint"), h("dd", {}, h("code", { id: "endpoint-url" }, subscription.url)),
          h("dt", {}, "tenant"), h("dd", {}, subscription.tenant),
          h("dt", {}, "owner key"), h("dd", {}, subscription.owner),
          h("dt", {}, "status"), h("dd", { id: "status" }, subscription.status, subscription.status_reason ? ` (${subscription.status_reason})` : ""),
          h("dt", {}, "ordered"), h("dd", {}, subscription.ordered ? "yes, one conversation's events one at a time" : "no"),
          h("dt", {}, "secret version"), secretVersion,
          h("dt", {}, "created"), h("dd", {}, when(subscription.created_at)),
          h("dt", {}, "updated"), h("dd", {}, when(subscription.updated_at)),
        ),
        manage ? actions(subscription, path, output, secretVersion, context) : null,
      ),
      healthCard,
    ),
    h("section", { "aria-labelledby": "pattern" }, h("h2", { id: "pattern" }, "Event pattern"), json(subscription.event_pattern)),
    h(
      "section",
      { "aria-labelledby": "log" },
      h("h2", { id: "log" }, eventId ? "Every attempt for one event" : "Delivery log"),
      eventId ? eventHeader(path, eventId, manage, here, () => refreshSoon()) : h("p", { class: "muted" }, "Newest first. Open a row to see every attempt for its event (and retry it)."),
      log,
    ),
    manage ? replayForm(path, () => refreshSoon()) : null,
    manage ? editForm(subscription, path, context) : null,
  );

  const page = filtered || recent;
  let attempts = page.attempts;
  let cursor = page.next_cursor;
  let olderLoaded = false;
  const older = h("button", { type: "button", class: "secondary", hidden: !cursor }, "Older attempts");
  const openEvent = (a) => context.go(`${here}?event=${encodeURIComponent(a.event_id)}`);
  const show = () => replace(log, attemptTable(attempts, eventId ? null : openEvent, Boolean(eventId)), h("p", {}, older));
  older.addEventListener("click", () =>
    act(older, log, async () => {
      const next = await api("GET", withQuery(`${path}/deliveries`, { event_id: eventId, cursor, limit: 100 }));
      attempts = attempts.concat(next.attempts);
      cursor = next.next_cursor;
      older.hidden = !cursor;
      olderLoaded = true;
      show();
    }),
  );
  show();

  // While open, new attempts (a retry, a replay, the bus) show up without a reload; sooner
  // right after this page queued some.
  async function refresh() {
    if (olderLoaded) return;
    try {
      const fresh = await api("GET", withQuery(`${path}/deliveries`, { event_id: eventId, limit: eventId ? 100 : HEALTH_SAMPLE }));
      if (sameAttempts(fresh.attempts, attempts)) return;
      attempts = fresh.attempts;
      cursor = fresh.next_cursor;
      older.hidden = !cursor;
      show();
      if (!eventId) replace(healthCard, h("h2", { id: "health" }, "Endpoint health"), healthView(subscription, fresh.attempts));
    } catch {
      // A failed refresh keeps what is shown; the next one tries again.
    }
  }
  const soon = new Set();
  refreshSoon = () => {
    for (const delay of SOON_MS) {
      const timeout = setTimeout(() => soon.delete(timeout) && refresh(), delay);
      soon.add(timeout);
    }
  };
  const timer = setInterval(refresh, REFRESH_EVERY_MS);
  return () => {
    clearInterval(timer);
    for (const timeout of soon) clearTimeout(timeout);
  };
}

function attemptKey(a) {
  return `${a.event_id}/${a.attempt}/${a.at}`;
}

function sameAttempts(fresh, shown) {
  return fresh.length === shown.length && fresh.every((a, i) => attemptKey(a) === attemptKey(shown[i]));
}

function outcomeTag(outcome) {
  const kind = { delivered: "good", retry: "warn", failed: "bad", disabled: "bad" }[outcome] || "";
  return h("span", { class: `tag ${kind}` }, outcome);
}

function attemptTable(attempts, open, withExcerpt) {
  const columns = [
    { label: "At", value: (a) => when(a.at) },
    { label: "Event", value: (a) => h("code", { title: a.event_id }, a.event_id.slice(0, 8)) },
    { label: "Attempt", value: (a) => a.attempt },
    { label: "Outcome", value: (a) => outcomeTag(a.outcome) },
    { label: "Answer", value: (a) => (a.status_code ? String(a.status_code) : a.error || "no answer") },
    { label: "Latency", value: (a) => `${a.latency_ms} ms` },
    { label: "Trigger", value: (a) => a.trigger.split(":")[0] },
    { label: "Next attempt", value: (a) => when(a.next_attempt_at) },
  ];
  if (withExcerpt) columns.push({ label: "Response", value: (a) => h("code", {}, a.response_excerpt || "") });
  return table(columns, attempts, open || undefined);
}

function eventHeader(path, eventId, manage, here, queued) {
  const output = h("div", { "aria-live": "polite" });
  const retry = h("button", { type: "button" }, "Retry this delivery");
  retry.addEventListener("click", async () => {
    const done = await act(retry, output, () => api("POST", `${path}/deliveries/${encodeURIComponent(eventId)}/retry`));
    if (!done) return;
    replace(output, notice("Queued: the new attempt shows here when it is made."));
    queued();
  });
  return h(
    "div",
    {},
    h(
      "p",
      { class: "row" },
      "Event ",
      h("a", { href: `#/events/${encodeURIComponent(eventId)}` }, h("code", {}, eventId)),
      h("a", { href: here }, "all deliveries"),
      manage ? retry : null,
    ),
    output,
  );
}

// --- health ---------------------------------------------------------------------------------

function percentile(sorted, p) {
  if (!sorted.length) return null;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

function healthView(subscription, attempts) {
  if (!attempts.length) return h("p", { class: "muted" }, "No delivery attempted yet.");
  const delivered = attempts.filter((a) => a.outcome === "delivered");
  const failing = attempts.filter((a) => a.outcome !== "delivered");
  const latencies = attempts.filter((a) => a.status_code).map((a) => a.latency_ms).sort((a, b) => a - b);
  const lastFailure = failing[0];
  return h(
    "div",
    {},
    h(
      "p",
      { class: "row" },
      h("span", { class: "tag good" }, `delivered ${delivered.length} of ${attempts.length}`),
      h("span", { class: `tag ${failing.length ? "bad" : ""}` }, `not delivered ${failing.length}`),
      latencies.length ? h("span", { class: "tag" }, `latency median ${percentile(latencies, 50)} ms · p95 ${percentile(latencies, 95)} ms`) : null,
    ),
    h(
      "dl",
      { class: "facts" },
      h("dt", {}, "last delivered"), h("dd", {}, delivered.length ? when(delivered[0].at) : "never"),
      h("dt", {}, "last failure"), h("dd", {}, lastFailure ? `${when(lastFailure.at)}: ${lastFailure.status_code || lastFailure.error || lastFailure.outcome}` : "none"),
      h("dt", {}, "failing since"), h("dd", {}, subscription.failing_since ? when(subscription.failing_since) : "—"),
    ),
    latencyChart(attempts.slice(0, CHART_SLOTS).reverse()),
    h("p", { class: "muted" }, `From the latest ${attempts.length} attempts.`),
  );
}

// One bar per attempt, oldest on the left: its height the latency, its colour the outcome.
function latencyChart(attempts) {
  const width = 8 * CHART_SLOTS + 20; // bars keep one width however few attempts there are yet
  const height = 90;
  const top = Math.max(1, ...attempts.map((a) => a.latency_ms));
  const colour = { delivered: "#1b7f3b", retry: "#8a5a00", failed: "#b3261e", disabled: "#b3261e" };
  return h(
    "div",
    { class: "scroll" },
    svg(
      "svg",
      // As wide as its card at any screen width (the bars stretch), so it never widens the page.
      { class: "chart", width: "100%", height, viewBox: `0 0 ${width} ${height}`, preserveAspectRatio: "none", role: "img", "aria-label": "latency of each recent attempt, oldest first, coloured by outcome" },
      attempts.map((a, i) => {
        const barHeight = Math.max(2, (a.latency_ms / top) * (height - 20));
        return svg(
          "rect",
          { x: 10 + i * 8, y: height - 10 - barHeight, width: 6, height: barHeight, fill: colour[a.outcome] || "#8aa4cf" },
          svg("title", {}, `${when(a.at)} attempt ${a.attempt}: ${a.outcome}, ${a.status_code || a.error || ""}, ${a.latency_ms} ms`),
        );
      }),
    ),
  );
}

// --- changes --------------------------------------------------------------------------------

function actions(subscription, path, output, secretVersion, context) {
  const here = `#/partners/${encodeURIComponent(subscription.id)}`;
  // Active: pause it. Paused, failing or disabled: resume (which also starts a failing one afresh).
  const pausing = subscription.status === "active";
  const toggle = h("button", { type: "button", class: "secondary" }, pausing ? "Pause" : "Resume");
  toggle.addEventListener("click", async () => {
    const done = await act(toggle, output, () => api("POST", `${path}/${pausing ? "pause" : "resume"}`));
    if (!done) return;
    flash = pausing ? "Paused: what arrives meanwhile is held until resumed." : `Resumed: ${done.resent} held deliveries sent again.`;
    context.go(here);
  });
  const rotate = h("button", { type: "button", class: "secondary" }, "Rotate signing secret");
  rotate.addEventListener("click", async () => {
    const rotated = await act(rotate, output, () => api("POST", `${path}/rotate`));
    if (!rotated) return;
    secretVersion.textContent = String(rotated.secret_version);
    replace(output, secretShownOnce(rotated.secret, `Rotated. The previous secret keeps signing too until ${when(rotated.previous_secret_valid_until)}.`));
  });
  const remove = h("button", { type: "button", class: "danger" }, "Delete");
  let armed = false;
  remove.addEventListener("click", async () => {
    if (!armed) {
      armed = true;
      remove.textContent = "Confirm: delete this subscription";
      return;
    }
    const done = await act(remove, output, () => api("DELETE", path));
    if (done !== undefined) {
      flash = `Deleted ${subscription.id}.`;
      context.go("#/partners");
    }
  });
  return h("p", { class: "row" }, toggle, rotate, remove);
}

function localInput(date) {
  return new Date(date.getTime() - date.getTimezoneOffset() * 60000).toISOString().slice(0, 16);
}

function replayForm(path, queued) {
  const output = h("div", { "aria-live": "polite" });
  const submit = h("button", { type: "submit" }, "Replay");
  const form = h(
    "form",
    { class: "card", "aria-labelledby": "replay" },
    h("h2", { id: "replay" }, "Replay"),
    h("p", { class: "muted" }, "Send again every event of a time range this subscription matches (the endpoint sees the same event ids, so it can tell them apart)."),
    h(
      "div",
      { class: "filters" },
      field("Since", h("input", { name: "since", type: "datetime-local", required: true, value: localInput(new Date(Date.now() - 24 * 3600 * 1000)) })),
      field("Until (empty: now)", h("input", { name: "until", type: "datetime-local" })),
      submit,
    ),
    output,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const chosen = new FormData(form);
    const body = { since: new Date(chosen.get("since")).toISOString(), until: chosen.get("until") ? new Date(chosen.get("until")).toISOString() : new Date().toISOString() };
    const started = await act(submit, output, () => api("POST", `${path}/replay`, body));
    if (started) {
      const count = started.queued === null ? "EventBridge is replaying the archive" : `${started.queued} event${started.queued === 1 ? "" : "s"} queued`;
      replace(output, notice(`Replay ${started.replay} started: ${count}. The attempts show in the delivery log.`));
      queued();
    }
  });
  return form;
}

function editForm(subscription, path, context) {
  return subscriptionForm(
    { id: "edit", title: "Change", values: subscription, patternLabel: "Event pattern", submitLabel: "Save changes" },
    async (body, submit, output) => {
      const saved = await act(submit, output, () => api("PATCH", path, body));
      if (saved) {
        flash = "Saved.";
        context.go(`#/partners/${encodeURIComponent(subscription.id)}`);
      }
    },
  );
}
