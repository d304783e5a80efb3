// Connections: per provider the webhook URL to paste into the provider's console, the counts of
// what arrived (a chart per day), and credential rotation. Credentials are typed into password
// fields, sent once and never shown again: the API never answers them.
import { api, withQuery } from "../api.js";
import { act, errorBox, field, h, notice, replace, select, svg, table, when } from "../ui.js";

export async function render(main, context) {
  if (context.parts[0]) return renderConnection(main, context, context.parts[0]);
  const tenant = context.params.get("tenant");
  const [listing, providers] = await Promise.all([
    api("GET", withQuery("/admin/connections", { tenant })),
    api("GET", "/admin/providers"),
  ]);
  const byProvider = new Map(providers.providers.map((p) => [p.name, p]));
  const rows = listing.connections.slice().sort((a, b) => a.provider.localeCompare(b.provider) || a.id.localeCompare(b.id));
  replace(
    main,
    h("h1", {}, "Connections"),
    table(
      [
        { label: "Provider", value: (c) => (byProvider.get(c.provider) || {}).title || c.provider },
        { label: "Name", value: (c) => c.name || "" },
        { label: "Webhook URL", value: (c) => h("code", {}, c.webhook_url) },
        { label: "Created", value: (c) => when(c.created_at) },
        { label: "Rotated", value: (c) => when(c.rotated_at) },
      ],
      rows,
      (c) => context.go(`#/connections/${encodeURIComponent(c.id)}`),
    ),
    context.whoami.role === "admin" ? createForm(providers.providers, context) : null,
  );
  return undefined;
}

// The credential fields a provider asks for. Secret-looking ones are password inputs; none is
// marked required here, because the API knows which a provider needs and names what is missing.
const SECRET_FIELD = /secret|token|key|password|signature/i;

function credentialInputs(provider) {
  return (provider ? provider.credential_fields : []).map((name) =>
    field(name, h("input", { type: SECRET_FIELD.test(name) ? "password" : "text", name: `credential:${name}`, autocomplete: "off" })),
  );
}

function credentialsFrom(form) {
  const credentials = {};
  for (const [name, value] of new FormData(form)) {
    if (name.startsWith("credential:")) credentials[name.slice("credential:".length)] = value;
  }
  return credentials;
}

function nonEmpty(credentials) {
  return Object.fromEntries(Object.entries(credentials).filter(([, value]) => value !== ""));
}

function createForm(providers, context) {
  const fields = h("div", { class: "filters" });
  const output = h("div", { "aria-live": "polite" });
  const choose = select("provider", providers.map((p) => [p.name, p.title]), null, "choose a provider");
  choose.required = true;
  choose.addEventListener("change", () => replace(fields, credentialInputs(providers.find((p) => p.name === choose.value))));
  const submit = h("button", { type: "submit" }, "Create connection");
  const form = h(
    "form",
    { class: "card", "aria-labelledby": "create-connection" },
    h("h2", { id: "create-connection" }, "New connection"),
    h("div", { class: "filters" }, field("Provider", choose), field("Name", h("input", { name: "name", maxlength: 200 }))),
    fields,
    h("p", {}, submit),
    output,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const body = { provider: choose.value, credentials: nonEmpty(credentialsFrom(form)) };
    const name = new FormData(form).get("name");
    if (name) body.name = name;
    const created = await act(submit, output, () => api("POST", "/admin/connections", body));
    if (created) context.go(`#/connections/${encodeURIComponent(created.id)}`);
  });
  return form;
}

async function renderConnection(main, context, id) {
  const [connection, providers] = await Promise.all([
    api("GET", `/admin/connections/${encodeURIComponent(id)}`),
    api("GET", "/admin/providers"),
  ]);
  const provider = providers.providers.find((p) => p.name === connection.provider);
  const copied = h("span", { class: "muted", "aria-live": "polite" });
  const copy = h("button", { type: "button", class: "secondary" }, "Copy");
  copy.addEventListener("click", async () => {
    try {
      await navigator.clipboard.writeText(connection.webhook_url);
      copied.textContent = "copied";
    } catch {
      copied.textContent = "select the URL and copy it";
    }
  });
  const statsSection = h("section", { class: "card", "aria-labelledby": "arrivals" }, h("h2", { id: "arrivals" }, "What arrived"), h("p", { class: "muted" }, "Loading…"));
  replace(
    main,
    h("p", {}, h("a", { href: "#/connections" }, "← Connections")),
    h("h1", {}, connection.name || connection.id, " ", h("span", { class: "tag" }, provider ? provider.title : connection.provider)),
    h(
      "section",
      { class: "card", "aria-labelledby": "webhook" },
      h("h2", { id: "webhook" }, "Webhook URL"),
      h("p", { class: "muted" }, "Paste it into the provider's console as the webhook (callback) URL."),
      h("p", { class: "row" }, h("code", { id: "webhook-url" }, connection.webhook_url), copy, copied),
      h(
        "dl",
        { class: "facts" },
        h("dt", {}, "id"), h("dd", {}, connection.id),
        h("dt", {}, "tenant"), h("dd", {}, connection.tenant),
        h("dt", {}, "created"), h("dd", {}, when(connection.created_at)),
        h("dt", {}, "credentials rotated"), h("dd", {}, when(connection.rotated_at) || "never"),
        h("dt", {}, "outbound (send API)"), h("dd", {}, connection.outbound_configured_at ? `configured ${when(connection.outbound_configured_at)}` : "not configured"),
      ),
    ),
    statsSection,
    ["admin"].includes(context.whoami.role) ? rotateForm(connection, provider, context) : null,
  );
  try {
    const stats = await api("GET", `/admin/connections/${encodeURIComponent(id)}/stats?days=14`);
    replace(statsSection, h("h2", { id: "arrivals" }, "What arrived"), statsView(stats));
  } catch (error) {
    replace(statsSection, h("h2", { id: "arrivals" }, "What arrived"), errorBox(error));
  }
  return undefined;
}

function statsView(stats) {
  const days = stats.days || [];
  const totals = days.reduce(
    (sum, d) => {
      sum.accepted += d.accepted || 0;
      sum.duplicates += d.duplicates || 0;
      for (const [reason, n] of Object.entries(d.rejected || {})) sum.rejected[reason] = (sum.rejected[reason] || 0) + n;
      return sum;
    },
    { accepted: 0, duplicates: 0, rejected: {} },
  );
  const reasons = Object.entries(totals.rejected);
  return h(
    "div",
    {},
    h("p", {}, "Last received: ", stats.last_received_at ? when(stats.last_received_at) : "never"),
    dayChart(days),
    h("p", { class: "row muted" }, "per day (UTC):", h("span", { class: "tag good" }, "accepted"), h("span", { class: "tag" }, "duplicates"), h("span", { class: "tag bad" }, "rejected")),
    h(
      "p",
      { class: "row" },
      h("span", { class: "tag good" }, `accepted ${totals.accepted}`),
      h("span", { class: "tag" }, `duplicates ${totals.duplicates}`),
      reasons.length ? reasons.map(([reason, n]) => h("span", { class: "tag bad" }, `${reason} ${n}`)) : h("span", { class: "tag" }, "no rejections"),
    ),
  );
}

// Stacked bars per day: accepted, duplicates, rejected (all reasons; the tags above split them).
function dayChart(days) {
  const step = 34;
  const width = step * Math.max(days.length, 1) + 20;
  const height = 140;
  const top = Math.max(1, ...days.map((d) => (d.accepted || 0) + (d.duplicates || 0) + sumValues(d.rejected)));
  const scale = (n) => (n / top) * (height - 30);
  const bars = days.map((d, i) => {
    const x = 10 + i * step;
    let y = height - 18;
    const parts = [];
    for (const [kind, n] of [["accepted", d.accepted || 0], ["duplicates", d.duplicates || 0], ["rejected", sumValues(d.rejected)]]) {
      const barHeight = scale(n);
      y -= barHeight;
      if (n) parts.push(svg("rect", { x, y, width: 24, height: barHeight, class: kind }, svg("title", {}, `${d.date}: ${n} ${kind}`)));
    }
    // The day of the month under each bar; the month where it changes (and first).
    const label = i === 0 || d.date.slice(8) === "01" ? d.date.slice(5) : d.date.slice(8);
    parts.push(svg("text", { x: x + 12, y: height - 4, "text-anchor": "middle" }, label));
    return parts;
  });
  return h(
    "div",
    { class: "scroll" },
    svg("svg", { class: "chart", width, height, role: "img", "aria-label": "webhooks per day: accepted, duplicates, rejected" }, bars),
  );
}

function sumValues(object) {
  return Object.values(object || {}).reduce((a, b) => a + b, 0);
}

function rotateForm(connection, provider, context) {
  const output = h("div", { "aria-live": "polite" });
  const submit = h("button", { type: "submit" }, "Rotate credentials");
  const form = h(
    "form",
    { class: "card", "aria-labelledby": "rotate" },
    h("h2", { id: "rotate" }, "Rotate credentials"),
    h("p", { class: "muted" }, "Paste the provider's new credentials. The old ones keep verifying for the grace period, so nothing is refused while the provider switches."),
    h("div", { class: "filters" }, credentialInputs(provider), field("Grace (seconds)", h("input", { name: "grace_seconds", type: "number", min: 0, max: 2592000, value: 86400 }))),
    h("p", {}, submit),
    output,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const body = { credentials: nonEmpty(credentialsFrom(form)), grace_seconds: Number(new FormData(form).get("grace_seconds")) };
    const rotated = await act(submit, output, () => api("POST", `/admin/connections/${encodeURIComponent(connection.id)}/rotate`, body));
    if (rotated) {
      form.reset();
      replace(output, notice(`Rotated. The previous credentials verify until ${when(rotated.previous_credentials_valid_until) || "now"}.`));
    }
  });
  return form;
}
