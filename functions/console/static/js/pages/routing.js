// Routing: the rule set and the taxonomy edited as JSON (the API validates and names each
// problem; a save names the version it replaces), teams and responders (responders on a map),
// and the simulation of the edited rules against past events beside what happened to them.
// Admin keys change routing; staff keys view it and may simulate (functions/admin/routing_config.py).
import { api, withQuery } from "../api.js";
import { act, errorBox, field, h, notice, replace, svg, table, when } from "../ui.js";

const SECTIONS = { rules: "Rules and simulation", taxonomy: "Taxonomy", teams: "Teams and responders" };
const STARTER_RULES = { default_team: "front-desk", rules: [] };

export async function render(main, context) {
  const section = SECTIONS[context.parts[0]] ? context.parts[0] : "rules";
  const tenant = context.params.get("tenant");
  const manage = context.whoami.role === "admin";
  const tabs = h(
    "p",
    { class: "row", "aria-label": "Routing sections" },
    Object.entries(SECTIONS).map(([name, title]) =>
      h("a", { href: withQuery(`#/routing/${name}`, { tenant }), class: "tag", "aria-current": name === section ? "page" : null }, title),
    ),
  );
  const body = h("div");
  // An operator key ('*') spans tenants: the API needs to be told which one.
  const operator = context.whoami.tenant === "*";
  const tenantForm = operator
    ? h(
        "form",
        { class: "card filters", "aria-label": "Tenant" },
        field("Tenant", h("input", { name: "tenant", value: tenant || "", required: true })),
        h("button", { type: "submit" }, "Show"),
      )
    : null;
  if (tenantForm) {
    tenantForm.addEventListener("submit", (event) => {
      event.preventDefault();
      context.go(withQuery(`#/routing/${section}`, { tenant: new FormData(tenantForm).get("tenant") }));
    });
  }
  replace(
    main,
    h("h1", {}, "Routing"),
    tabs,
    tenantForm,
    context.whoami.role === "staff" ? h("p", { class: "notice", role: "status" }, "This staff key may view routing and simulate rules; changing them needs an admin key.") : null,
    body,
  );
  if (operator && !tenant) return undefined;
  const page = { rules: renderRules, taxonomy: renderTaxonomy, teams: renderTeams }[section];
  await page(body, { tenant, manage });
  return undefined;
}

// JSON typed by a person: parsed here so a typo is named before anything is sent.
function parsed(textarea) {
  try {
    return { value: JSON.parse(textarea.value) };
  } catch (error) {
    return { error: { message: `the text is not JSON: ${error.message}` } };
  }
}

// For the editors: the API answers every optional field, most of them null (not set); left out,
// they mean the same, and the rules read far shorter.
function pretty(value) {
  return JSON.stringify(value, (name, field) => (name && field === null ? undefined : field), 2);
}

// --- rules and simulation -------------------------------------------------------------------

async function renderRules(body, { tenant, manage }) {
  let version = null;
  let ruleSet = STARTER_RULES;
  try {
    const view = await api("GET", withQuery("/admin/routing/rules", { tenant }));
    version = view.version;
    ruleSet = view.rule_set;
  } catch (error) {
    if (error.code !== "no_rule_set") throw error;
  }
  const versionLine = h("p", { id: "rules-version" });
  const showVersion = () => replace(versionLine, version === null ? "No rule set is in force yet: saving this one makes version 1." : `Version ${version} is in force.`);
  showVersion();
  const editor = h("textarea", { id: "rules-json", name: "rule_set", spellcheck: "false", rows: 18, "aria-describedby": "rules-version" }, pretty(ruleSet));
  const summary = h("div", {}, rulesTable(ruleSet));
  // The table shows the rule set in force; after a save, the one saved.
  const output = h("div", { "aria-live": "polite" });
  const limit = h("input", { name: "limit", type: "number", min: 1, max: 500, value: 100, size: 5 });
  const simulateButton = h("button", { type: "button", class: "secondary" }, "Simulate against past events");
  const save = h("button", { type: "submit", disabled: !manage, title: manage ? null : "needs an admin key" }, "Save rule set");
  const simulation = h("section", { class: "card", "aria-labelledby": "simulation" }, h("h2", { id: "simulation" }, "Simulation"), h("p", { class: "muted" }, "Run a simulation to see what the edited rules would have done with the most recent events, beside what routing did."));
  const form = h(
    "form",
    { class: "card", "aria-labelledby": "rules-editor" },
    h("h2", { id: "rules-editor" }, "Rule set"),
    versionLine,
    h("label", { for: "rules-json" }, "The rule set as JSON (default_team and rules; see the API's RuleSet schema)"),
    editor,
    h("div", { class: "filters" }, field("Events to simulate", limit), simulateButton, save),
    output,
  );
  replace(body, form, simulation, h("section", { class: "card", "aria-labelledby": "rules-in-force" }, h("h2", { id: "rules-in-force" }, "Rules in order"), summary));

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const edited = parsed(editor);
    if (edited.error) return replace(output, errorBox(edited.error));
    const saved = await act(save, output, () => api("PUT", withQuery("/admin/routing/rules", { tenant }), { rule_set: edited.value, expected_version: version }));
    if (saved) {
      version = saved.version;
      showVersion();
      replace(summary, rulesTable(edited.value));
      replace(output, notice(`Saved: version ${saved.version}, ${saved.rules} rules. The next event is routed by it.`));
    }
    return undefined;
  });
  simulateButton.addEventListener("click", async () => {
    const edited = parsed(editor);
    if (edited.error) return replace(output, errorBox(edited.error));
    replace(output);
    const report = await act(simulateButton, output, () => api("POST", withQuery("/admin/routing/simulate", { tenant }), { rule_set: edited.value, limit: Number(limit.value) || 100 }));
    if (report) replace(simulation, h("h2", { id: "simulation" }, "Simulation"), simulationView(report));
    return undefined;
  });
}

function rulesTable(ruleSet) {
  const rules = Array.isArray(ruleSet && ruleSet.rules) ? ruleSet.rules : [];
  return h(
    "div",
    {},
    h("p", {}, "Default team: ", h("code", {}, (ruleSet && ruleSet.default_team) || "—")),
    table(
      [
        { label: "#", value: (r) => rules.indexOf(r) + 1 },
        { label: "Rule", value: (r) => [r.name, r.enabled === false ? h("span", { class: "tag warn" }, "disabled") : null] },
        { label: "When", value: (r) => conditionsText(r.when) },
        { label: "Then", value: (r) => actionText(r.then) },
      ],
      rules,
    ),
  );
}

function conditionsText(when) {
  const parts = Object.entries(when || {}).filter(([, v]) => v !== null && v !== undefined);
  if (!parts.length) return h("span", { class: "muted" }, "always");
  return parts.map(([name, value]) => h("div", {}, h("code", {}, name), " ", typeof value === "object" ? JSON.stringify(value) : String(value)));
}

function actionText(then) {
  if (!then || typeof then !== "object") return "";
  const { kind, ...rest } = then;
  const details = Object.entries(rest).filter(([, v]) => v !== null && v !== undefined);
  return [h("span", { class: "tag" }, kind || then.type || "?"), " ", details.map(([n, v]) => `${n}=${typeof v === "object" ? JSON.stringify(v) : v}`).join(", ")];
}

function decisionText(decision) {
  if (!decision) return h("span", { class: "muted" }, "unknown");
  return h(
    "div",
    {},
    h("span", { class: "tag" }, decision.action),
    decision.rule ? [" ", h("code", {}, decision.rule)] : null,
    h("div", {}, "queue ", decision.queue || "—", " · assignee ", decision.assignee || "—"),
    (decision.tags || []).length ? h("div", {}, "tags ", decision.tags.join(", ")) : null,
    decision.auto_reply_rule ? h("div", {}, "auto-reply ", decision.auto_reply_rule) : null,
    decision.reason ? h("div", { class: "muted" }, decision.reason) : null,
  );
}

function simulationView(report) {
  const onlyChanged = h("input", { type: "checkbox", name: "only_changed" });
  const rows = report.events.slice().reverse(); // newest first, as the other lists
  const shown = h("div");
  const show = () =>
    replace(
      shown,
      table(
        [
          { label: "Event", value: (e) => [h("a", { href: `#/events/${encodeURIComponent(e.event_id)}` }, h("code", {}, e.type)), h("div", { class: "muted" }, e.provider, " · ", when(e.occurred_at))] },
          { label: "Topics", value: (e) => e.topics.join(", ") },
          { label: "What happened", value: (e) => (e.actual ? decisionText(e.actual) : h("span", { class: "muted" }, e.not_compared || "unknown")) },
          { label: "With the edited rules", value: (e) => decisionText(e.proposed) },
          {
            label: "Changes",
            value: (e) =>
              e.changed ? e.changes.map((c) => h("span", { class: "tag bad" }, c)) : e.not_compared ? h("span", { class: "tag" }, "not compared") : h("span", { class: "tag good" }, "same"),
          },
        ],
        onlyChanged.checked ? rows.filter((e) => e.changed) : rows,
      ),
    );
  onlyChanged.addEventListener("change", show);
  show();
  return h(
    "div",
    { id: "simulation-report" },
    h(
      "p",
      { class: "row" },
      h("span", { class: "tag" }, `${report.events.length} events`),
      h("span", { class: "tag good" }, `${report.compared} compared`),
      h("span", { class: report.changed ? "tag bad" : "tag good" }, `${report.changed} would change`),
      h("span", { class: "tag" }, `${report.not_compared} not compared`),
      h("span", { class: "tag" }, `${report.not_routed} not routed`),
      h("label", { class: "inline" }, onlyChanged, "only the changed ones"),
    ),
    shown,
  );
}

// --- taxonomy -------------------------------------------------------------------------------

async function renderTaxonomy(body, { tenant, manage }) {
  const view = await api("GET", withQuery("/admin/routing/taxonomy", { tenant }));
  let version = view.version;
  const versionLine = h("p", { id: "taxonomy-version" });
  const showVersion = () => replace(versionLine, `Version ${version}.`);
  showVersion();
  const editor = h("textarea", { id: "taxonomy-json", name: "taxonomy", spellcheck: "false", rows: 18, "aria-describedby": "taxonomy-version" }, pretty(view.taxonomy));
  const summary = h("div", {}, taxonomyTables(view.taxonomy));
  const output = h("div", { "aria-live": "polite" });
  const save = h("button", { type: "submit", disabled: !manage, title: manage ? null : "needs an admin key" }, "Save taxonomy");
  const form = h(
    "form",
    { class: "card", "aria-labelledby": "taxonomy-editor" },
    h("h2", { id: "taxonomy-editor" }, "Taxonomy"),
    versionLine,
    h("label", { for: "taxonomy-json" }, "Topics with their phrases, and entity dictionaries, as JSON"),
    editor,
    h("p", {}, save),
    output,
  );
  replace(body, h("div", { class: "grid2 wide" }, form, h("section", { class: "card", "aria-labelledby": "taxonomy-summary" }, h("h2", { id: "taxonomy-summary" }, "What sensing matches"), summary)));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const edited = parsed(editor);
    if (edited.error) return replace(output, errorBox(edited.error));
    const saved = await act(save, output, () => api("PUT", withQuery("/admin/routing/taxonomy", { tenant }), edited.value));
    if (saved) {
      version = saved.version;
      showVersion();
      replace(summary, taxonomyTables(edited.value));
      replace(output, notice(`Saved: version ${saved.version}; sensing now matches ${saved.phrases} phrases.`));
    }
    return undefined;
  });
}

function taxonomyTables(taxonomy) {
  const entities = Object.entries(taxonomy.entities || {}).flatMap(([dictionary, items]) => items.map((e) => ({ dictionary, ...e })));
  return h(
    "div",
    {},
    h("h3", {}, "Topics"),
    table(
      [
        { label: "Topic", value: (t) => t.name },
        { label: "Phrases", value: (t) => (t.phrases || []).join(", ") },
      ],
      taxonomy.topics || [],
    ),
    h("h3", {}, "Entities"),
    table(
      [
        { label: "Dictionary", value: (e) => e.dictionary },
        { label: "Name", value: (e) => e.name },
        { label: "Aliases", value: (e) => (e.aliases || []).join(", ") },
      ],
      entities,
    ),
  );
}

// --- teams and responders -------------------------------------------------------------------

async function renderTeams(body, { tenant, manage }) {
  const teamsBox = h("div", {}, h("p", { class: "muted" }, "Loading…"));
  const respondersBox = h("div", {}, h("p", { class: "muted" }, "Loading…"));
  // After a save the lists are read again, so they show what the API now holds.
  const teamEditor = profileEditor({
    kind: "team",
    idLabel: "Team name",
    path: (name) => withQuery(`/admin/teams/${encodeURIComponent(name)}`, { tenant }),
    starter: { description: "", default_priority: 3, contact_points: [] },
    manage,
    saved: () => refreshLists(),
  });
  const responderEditor = profileEditor({
    kind: "responder",
    idLabel: "Responder id",
    path: (id) => withQuery(`/admin/responders/${encodeURIComponent(id)}`, { tenant }),
    starter: { name: "", teams: [], skills: {}, capacity: 5, available: true, location: null },
    manage,
    saved: () => refreshLists(),
  });
  // A row opens its profile in the editor (Enter or a click), ready to change and save.
  const openTeam = (team) => {
    const { name, members, ...profile } = team;
    teamEditor.load(name, profile);
  };
  const openResponder = (responder) => {
    const { id, tenant: _tenant, load, ...profile } = responder;
    responderEditor.load(id, profile);
  };
  async function refreshLists() {
    const [teams, responders] = await Promise.all([
      api("GET", withQuery("/admin/teams", { tenant })),
      api("GET", withQuery("/admin/responders", { tenant })),
    ]);
    replace(
      teamsBox,
      table(
        [
          { label: "Team", value: (t) => t.name },
          { label: "Description", value: (t) => t.description || "" },
          { label: "Priority", value: (t) => t.default_priority },
          { label: "Members", value: (t) => t.members.join(", ") },
          { label: "On-call contacts", value: (t) => (t.contact_points || []).length },
        ],
        teams.teams,
        openTeam,
      ),
    );
    replace(
      respondersBox,
      responderMap(responders.responders),
      table(
        [
          { label: "Responder", value: (r) => [r.name, h("div", { class: "muted" }, h("code", {}, r.id))] },
          { label: "Teams", value: (r) => (r.teams || []).join(", ") },
          { label: "Skills", value: (r) => Object.entries(r.skills || {}).map(([s, n]) => `${s} ${n}`).join(", ") },
          { label: "Load", value: (r) => `${r.load} / ${r.capacity}` },
          { label: "Available", value: (r) => h("span", { class: `tag ${r.available ? "good" : "warn"}` }, r.available ? "yes" : "no") },
          { label: "Location", value: (r) => (r.location ? `${r.location.latitude.toFixed(3)}, ${r.location.longitude.toFixed(3)}` : "—") },
        ],
        responders.responders,
        openResponder,
      ),
    );
  }
  replace(
    body,
    h("section", { class: "card", "aria-labelledby": "teams" }, h("h2", { id: "teams" }, "Teams"), teamsBox, teamEditor.form),
    h("section", { class: "card", "aria-labelledby": "responders" }, h("h2", { id: "responders" }, "Responders"), respondersBox, responderEditor.form),
  );
  await refreshLists();
}

// A team's or responder's profile as JSON with its name, saved with PUT (create or replace).
function profileEditor({ kind, idLabel, path, starter, manage, saved: onSaved }) {
  const name = h("input", { name: `${kind}-id`, required: true, maxlength: 64, pattern: "[A-Za-z0-9_.\\-]+" });
  const editor = h("textarea", { id: `${kind}-json`, name: `${kind}-profile`, spellcheck: "false", rows: 10 }, pretty(starter));
  const output = h("div", { "aria-live": "polite" });
  const save = h("button", { type: "submit", disabled: !manage, title: manage ? null : "needs an admin key" }, `Save ${kind}`);
  const form = h(
    "form",
    { class: "editor", "aria-label": `Edit a ${kind}` },
    h("h3", {}, `Create or change a ${kind}`),
    h("p", { class: "muted" }, `Open a row to edit it, or type a new ${idLabel.toLowerCase()}.`),
    field(idLabel, name),
    h("label", { for: `${kind}-json` }, `The ${kind}'s profile as JSON`),
    editor,
    h("p", {}, save),
    output,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const edited = parsed(editor);
    if (edited.error) return replace(output, errorBox(edited.error));
    const saved = await act(save, output, () => api("PUT", path(name.value.trim()), edited.value));
    if (saved) {
      replace(output, notice(`Saved ${kind} ${saved.id || saved.name}.`));
      await onSaved().catch((error) => replace(output, errorBox(error)));
    }
    return undefined;
  });
  return {
    form,
    load(id, profile) {
      name.value = id;
      editor.value = pretty(profile);
      replace(output);
      editor.focus();
    },
  };
}

// Responders placed by latitude and longitude: an equirectangular plot (longitude scaled by the
// cosine of the middle latitude, so distances look right locally), no tiles, nothing external.
function responderMap(responders) {
  const placed = responders.filter((r) => r.location);
  if (!placed.length) return h("p", { class: "muted" }, "No responder has a location yet.");
  const lats = placed.map((r) => r.location.latitude);
  const lons = placed.map((r) => r.location.longitude);
  const middle = ((Math.min(...lats) + Math.max(...lats)) / 2) * (Math.PI / 180);
  const squeeze = Math.max(Math.cos(middle), 0.1);
  // Half a degree of margin at least, so one responder (or a close group) still has a map around it.
  const span = Math.max(Math.max(...lats) - Math.min(...lats), (Math.max(...lons) - Math.min(...lons)) * squeeze, 1);
  const margin = span * 0.15;
  const south = Math.min(...lats) - margin;
  const north = Math.max(...lats) + margin;
  const west = Math.min(...lons) - margin / squeeze;
  const east = Math.max(...lons) + margin / squeeze;
  const width = 640;
  const height = Math.max(220, Math.min(480, (width * (north - south)) / ((east - west) * squeeze)));
  const x = (lon) => ((lon - west) / (east - west)) * width;
  const y = (lat) => ((north - lat) / (north - south)) * height;
  const step = niceStep((north - south) / 4);
  const grid = [];
  for (let lat = Math.ceil(south / step) * step; lat <= north; lat += step) {
    grid.push(svg("line", { x1: 0, x2: width, y1: y(lat), y2: y(lat), class: "grid" }), svg("text", { x: 4, y: y(lat) - 3 }, `${lat.toFixed(step < 1 ? 1 : 0)}°`));
  }
  const lonStep = niceStep((east - west) / 4);
  for (let lon = Math.ceil(west / lonStep) * lonStep; lon <= east; lon += lonStep) {
    grid.push(svg("line", { x1: x(lon), x2: x(lon), y1: 0, y2: height, class: "grid" }), svg("text", { x: x(lon) + 3, y: height - 4 }, `${lon.toFixed(lonStep < 1 ? 1 : 0)}°`));
  }
  // Labels go right of their point, or left near the right edge, and move down past a label
  // already placed where they would overlap (a thin line then ties them to their point).
  const placedLabels = [];
  const points = placed
    .slice()
    .sort((a, b) => b.location.latitude - a.location.latitude)
    .map((r) => {
      const cx = x(r.location.longitude);
      const cy = y(r.location.latitude);
      const textWidth = r.name.length * 7.5;
      const left = cx + 8 + textWidth > width;
      const box = { x1: left ? cx - 8 - textWidth : cx + 8, x2: left ? cx - 8 : cx + 8 + textWidth, y: cy + 4 };
      while (placedLabels.some((o) => o.x1 < box.x2 && box.x1 < o.x2 && Math.abs(o.y - box.y) < LABEL_HEIGHT)) box.y += LABEL_HEIGHT;
      placedLabels.push(box);
      return svg(
        "g",
        { class: r.available ? "responder" : "responder away" },
        svg("title", {}, `${r.name} (${r.id}): ${r.location.latitude}, ${r.location.longitude}; load ${r.load}/${r.capacity}${r.available ? "" : ", not available"}`),
        box.y !== cy + 4 ? svg("line", { x1: cx, y1: cy, x2: left ? box.x2 : box.x1, y2: box.y - 4, class: "leader" }) : null,
        svg("circle", { cx, cy, r: 5 }),
        svg("text", { x: left ? box.x2 : box.x1, y: box.y, class: "label", "text-anchor": left ? "end" : "start" }, r.name),
      );
    });
  return h(
    "figure",
    { class: "map" },
    svg(
      "svg",
      { viewBox: `0 0 ${width} ${height.toFixed(0)}`, role: "img", "aria-label": `map of ${placed.length} responders by latitude and longitude`, id: "responder-map" },
      svg("rect", { x: 0, y: 0, width, height, class: "sea" }),
      grid,
      points,
    ),
    h("figcaption", { class: "muted" }, `${placed.length} of ${responders.length} responders have a location (equirectangular, north up).`),
  );
}

const LABEL_HEIGHT = 15;

function niceStep(raw) {
  const power = 10 ** Math.floor(Math.log10(raw));
  return [1, 2, 5, 10].map((m) => m * power).find((s) => s >= raw) || power * 10;
}
