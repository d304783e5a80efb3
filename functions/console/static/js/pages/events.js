// Events: the live list with its filters (provider, connection, type, contact, time), and one
// event with its canonical body, its raw request and what consumed it.
import { api, withQuery } from "../api.js";
import { errorBox, field, h, json, replace, select, table, when } from "../ui.js";

const LIVE_EVERY_MS = 5000;
const RAW_UNAVAILABLE = {
  derived: "No raw request: a consumer made this event, no provider sent it.",
  expired: "The raw request is no longer stored (the raw bucket keeps requests for 90 days).",
  elsewhere: "The raw request is in a bucket this hub does not read.",
};
const FILTERS = ["tenant", "provider", "connection", "type", "contact", "since"];

export async function render(main, context) {
  if (context.parts[0]) return renderEvent(main, context, context.parts[0]);
  return renderList(main, context);
}

async function renderList(main, context) {
  const params = context.params;
  const operator = context.whoami.tenant === "*";
  const [providers, connections] = await Promise.all([
    api("GET", "/admin/providers"),
    api("GET", withQuery("/admin/connections", { tenant: params.get("tenant") })).catch(() => ({ connections: [] })),
  ]);
  const form = h(
    "form",
    { class: "card filters", role: "search", "aria-label": "Event filters" },
    operator ? field("Tenant", h("input", { name: "tenant", value: params.get("tenant") || "", required: true })) : null,
    field("Provider", select("provider", providers.providers.map((p) => [p.name, p.title]), params.get("provider"))),
    field(
      "Connection",
      select(
        "connection",
        connections.connections.map((c) => [c.id, `${c.name || c.id} (${c.provider})`]),
        params.get("connection"),
      ),
    ),
    field("Type", h("input", { name: "type", value: params.get("type") || "", placeholder: "message.received", size: 18 })),
    field("Contact id", h("input", { name: "contact", value: params.get("contact") || "", placeholder: "ct_…", size: 14 })),
    field("Since", h("input", { name: "since", type: "datetime-local", value: params.get("since") || "" })),
    h("button", { type: "submit" }, "Apply"),
    h("label", { class: "inline" }, h("input", { type: "checkbox", name: "live", checked: params.get("live") !== "off" }), "Live"),
  );
  const output = h("div", { "aria-live": "polite" });
  const older = h("button", { type: "button", class: "secondary", hidden: true }, "Older events");
  replace(main, h("h1", {}, "Events"), form, output, h("p", {}, older));

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const chosen = new FormData(form);
    const query = new URLSearchParams();
    for (const name of FILTERS) if (chosen.get(name)) query.set(name, chosen.get(name));
    if (!chosen.get("live")) query.set("live", "off");
    context.go(`#/events?${query}`);
  });

  let rows = [];
  let cursor = null;
  const open = (row) => context.go(`#/events/${encodeURIComponent(row.id)}`);
  const show = () => replace(output, eventTable(rows, open));

  async function firstPage() {
    try {
      const page = await fetchPage(params, null);
      rows = page.events;
      cursor = page.next_cursor;
      older.hidden = !cursor;
      show();
    } catch (error) {
      replace(output, errorBox(error));
    }
  }
  older.addEventListener("click", async () => {
    try {
      const page = await fetchPage(params, cursor);
      rows = rows.concat(page.events);
      cursor = page.next_cursor;
      older.hidden = !cursor;
      show();
    } catch (error) {
      replace(output, errorBox(error));
    }
  });
  await firstPage();
  // Live: the first page again every few seconds while the list is open (older pages stay).
  if (params.get("live") === "off" || params.get("contact")) return undefined;
  const timer = setInterval(async () => {
    try {
      const page = await fetchPage(params, null);
      const known = new Set(rows.map((r) => r.id));
      const fresh = page.events.filter((e) => !known.has(e.id));
      if (fresh.length) {
        rows = fresh.concat(rows);
        show();
      }
    } catch {
      // A failed refresh keeps the list shown; the next one tries again.
    }
  }, LIVE_EVERY_MS);
  return () => clearInterval(timer);
}

// One page of events: the contact's timeline when a contact is named, else the event log.
async function fetchPage(params, cursor) {
  const contact = params.get("contact");
  if (contact) {
    const page = await api("GET", withQuery(`/admin/contacts/${encodeURIComponent(contact)}/timeline`, { cursor }));
    const events = page.events
      .filter((e) => !params.get("provider") || e.provider === params.get("provider"))
      .filter((e) => !params.get("type") || e.type === params.get("type"))
      .map((e) => ({ id: e.event_id, type: e.type, provider: e.provider, channel: e.channel, received_at: e.occurred_at, text: e.text, connection: "" }));
    return { events, next_cursor: page.next_cursor };
  }
  const since = params.get("since");
  return api(
    "GET",
    withQuery("/admin/events", {
      tenant: params.get("tenant"),
      provider: params.get("provider"),
      connection: params.get("connection"),
      type: params.get("type"),
      since: since ? new Date(since).toISOString() : null,
      cursor,
      limit: 50,
    }),
  );
}

function eventTable(rows, open) {
  return table(
    [
      { label: "Received", value: (e) => when(e.received_at) },
      { label: "Provider", value: (e) => e.provider },
      { label: "Type", value: (e) => h("code", {}, e.type) },
      { label: "Channel", value: (e) => e.channel },
      { label: "Text", value: (e) => (e.text || "").slice(0, 80) },
      { label: "Event", value: (e) => h("code", {}, e.id.slice(0, 8)) },
    ],
    rows,
    open,
  );
}

async function renderEvent(main, context, id) {
  const detail = await api("GET", `/admin/events/${encodeURIComponent(id)}`);
  const event = detail.event;
  const consumers = detail.consumed_by || [];
  replace(
    main,
    h("p", {}, h("a", { href: "#/events" }, "← Events")),
    h("h1", {}, h("code", {}, event.type), " from ", event.provider),
    h(
      "div",
      { class: "grid2" },
      h(
        "section",
        { class: "card", "aria-labelledby": "facts" },
        h("h2", { id: "facts" }, "Event"),
        h(
          "dl",
          { class: "facts" },
          ["id", "tenant", "connection", "channel", "occurred_at", "received_at", "conversation_key"].map((name) => [
            h("dt", {}, name),
            h("dd", {}, name.endsWith("_at") ? when(event[name]) : event[name] ?? "—"),
          ]),
        ),
      ),
      h(
        "section",
        { class: "card", "aria-labelledby": "consumers" },
        h("h2", { id: "consumers" }, "Consumed by"),
        table(
          [
            { label: "Consumer", value: (c) => c.consumer },
            { label: "Status", value: (c) => h("span", { class: `tag ${statusClass(c.status)}` }, c.status) },
            { label: "At", value: (c) => when(c.at) },
            { label: "", value: (c) => consumerLink(c) },
          ],
          consumers,
        ),
      ),
    ),
    h("section", { "aria-labelledby": "canonical" }, h("h2", { id: "canonical" }, "Canonical body"), json(event)),
    h(
      "section",
      { "aria-labelledby": "raw" },
      h("h2", { id: "raw" }, "Raw request"),
      detail.raw ? json(readableRaw(detail.raw)) : h("p", { class: "muted" }, RAW_UNAVAILABLE[detail.raw_unavailable] || "No raw request."),
    ),
  );
  return undefined;
}

// The body once: as text when it is UTF-8, else as base64.
function readableRaw(raw) {
  const shown = { ...raw };
  if (shown.body !== null && shown.body !== undefined) delete shown.body_base64;
  return shown;
}

function statusClass(status) {
  if (/fail|dead|error|reject/i.test(status || "")) return "bad";
  if (/deliver|done|logged|sent|ok|threaded|assigned|succeeded/i.test(status || "")) return "good";
  return "warn";
}

function consumerLink(consumer) {
  const ref = consumer.ref || {};
  const links = [];
  if (ref.conversation_id) links.push(h("a", { href: `#/conversations/${encodeURIComponent(ref.conversation_id)}` }, "conversation"));
  if (ref.contact_id) links.push(h("a", { href: `#/events?contact=${encodeURIComponent(ref.contact_id)}` }, "contact's events"));
  if (ref.subscription_id) links.push(h("a", { href: `#/partners/${encodeURIComponent(ref.subscription_id)}` }, "subscription"));
  if (ref.campaign_id) links.push(h("a", { href: `#/campaigns/${encodeURIComponent(ref.campaign_id)}` }, "campaign"));
  for (const name of ["outcome_event_id", "request_event_id"]) {
    if (ref[name]) links.push(h("a", { href: `#/events/${encodeURIComponent(ref[name])}` }, name.replace(/_event_id$/, "")));
  }
  for (const derived of (consumer.detail && consumer.detail.derived_events) || []) {
    links.push(h("a", { href: `#/events/${encodeURIComponent(derived.id)}` }, h("code", {}, derived.type)));
  }
  const detail = consumer.detail ? Object.entries(consumer.detail).filter(([, v]) => v !== null && typeof v !== "object") : [];
  return h("span", { class: "row" }, links, detail.map(([k, v]) => h("span", { class: "muted" }, `${k}: ${v}`)));
}
