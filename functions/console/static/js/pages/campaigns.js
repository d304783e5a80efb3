// Campaigns: the list, and one campaign with its flow as a diagram (each step with its runs'
// counts), its versions with a visual diff of any two, its fork lineage, sharing, its runs, and
// a JSON editor that saves a new version (the API checks it and names each problem).
import { api, withQuery } from "../api.js";
import { act, errorBox, field, h, notice, replace, select, svg, table, when } from "../ui.js";

const ACCESS_RANK = { viewer: 1, editor: 2, manager: 3 };
const RUN_STATES = ["active", "waiting", "completed", "stopped"];
const LINEAGE_LIMIT = 10; // ancestors followed: a fork of a fork of ... stops somewhere readable

export async function render(main, context) {
  if (context.parts[0]) return renderCampaign(main, context, context.parts[0]);
  return renderList(main, context);
}

// --- the list -------------------------------------------------------------------------------

async function renderList(main, context) {
  const params = context.params;
  const operator = context.whoami.tenant === "*";
  const form = h(
    "form",
    { class: "card filters", role: "search", "aria-label": "Campaign filters" },
    operator ? field("Tenant", h("input", { name: "tenant", value: params.get("tenant") || "", required: true })) : null,
    field("Name contains", h("input", { name: "q", value: params.get("q") || "", size: 18 })),
    field("Status", select("status", [["live", "live"], ["draft", "drafts only"]], params.get("status"))),
    h("button", { type: "submit" }, "Apply"),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const chosen = new FormData(form);
    const query = new URLSearchParams();
    for (const name of ["tenant", "q", "status"]) if (chosen.get(name)) query.set(name, chosen.get(name));
    context.go(`#/campaigns?${query}`);
  });
  const output = h("div", { "aria-live": "polite" });
  const more = h("button", { type: "button", class: "secondary", hidden: true }, "More campaigns");
  replace(main, h("h1", {}, "Campaigns"), form, output, h("p", {}, more));
  if (operator && !params.get("tenant")) {
    replace(output, notice("An operator key spans tenants: name one to list its campaigns."));
    return undefined;
  }

  let rows = [];
  let cursor = null;
  const open = (c) => context.go(`#/campaigns/${encodeURIComponent(c.id)}`);
  async function load() {
    const page = await api("GET", withQuery("/admin/campaigns", { tenant: params.get("tenant"), cursor, limit: 100 }));
    rows = rows.concat(page.campaigns);
    cursor = page.next_cursor;
    more.hidden = !cursor;
    replace(output, campaignTable(rows.filter((c) => matches(c, params)), open));
  }
  more.addEventListener("click", () => act(more, output, load));
  try {
    await load();
  } catch (error) {
    replace(output, errorBox(error));
  }
  return undefined;
}

function matches(campaign, params) {
  const words = (params.get("q") || "").trim().toLowerCase();
  if (words && !campaign.name.toLowerCase().includes(words)) return false;
  const status = params.get("status");
  if (status === "live" && !campaign.published_version) return false;
  if (status === "draft" && campaign.published_version) return false;
  return true;
}

function campaignTable(rows, open) {
  return table(
    [
      { label: "Name", value: (c) => c.name },
      { label: "Versions", value: (c) => c.latest_version },
      { label: "Live", value: (c) => (c.published_version ? h("span", { class: "tag good" }, `v${c.published_version}`) : h("span", { class: "tag" }, "draft")) },
      { label: "Forked from", value: (c) => (c.forked_from ? h("code", {}, `${c.forked_from.campaign} v${c.forked_from.version}`) : "") },
      { label: "Access", value: (c) => c.access },
      { label: "Updated", value: (c) => when(c.updated_at) },
    ],
    rows,
    open,
  );
}

// --- one campaign ---------------------------------------------------------------------------

async function renderCampaign(main, context, id) {
  const params = context.params;
  const path = `/admin/campaigns/${encodeURIComponent(id)}`;
  const [campaign, history, runs] = await Promise.all([
    api("GET", withQuery(path, { version: params.get("version") })),
    api("GET", `${path}/versions`),
    api("GET", `${path}/runs?limit=100`),
  ]);
  const shown = history.versions.find((v) => v.version === campaign.version) || { counts: {} };
  const may = (level) => ACCESS_RANK[campaign.access] >= ACCESS_RANK[level];
  const lineage = h("section", { class: "card", "aria-labelledby": "lineage" }, h("h2", { id: "lineage" }, "Lineage"), h("p", { class: "muted" }, "Loading…"));
  const output = h("div", { "aria-live": "polite" });

  replace(
    main,
    h("p", {}, h("a", { href: "#/campaigns" }, "← Campaigns")),
    h(
      "h1",
      {},
      campaign.name,
      " ",
      h("span", { class: "tag" }, `version ${campaign.version} of ${campaign.latest_version}`),
      " ",
      campaign.live ? h("span", { class: "tag good" }, "live") : h("span", { class: "tag" }, "not live"),
    ),
    output,
    h(
      "div",
      { class: "grid2" },
      h(
        "section",
        { class: "card", "aria-labelledby": "facts" },
        h("h2", { id: "facts" }, "Campaign"),
        h(
          "dl",
          { class: "facts" },
          h("dt", {}, "id"), h("dd", {}, h("code", {}, campaign.id)),
          h("dt", {}, "tenant"), h("dd", {}, campaign.tenant),
          h("dt", {}, "owner"), h("dd", {}, `${campaign.owner.name} (${campaign.owner.key_id})`),
          h("dt", {}, "live version"), h("dd", {}, campaign.published_version ? `v${campaign.published_version} since ${when(campaign.published_at)}` : "none"),
          h("dt", {}, "this version"), h("dd", {}, `saved ${when(campaign.saved_at)} by ${campaign.saved_by.name}`),
          h("dt", {}, "trigger"), h("dd", {}, campaign.trigger ? h("code", {}, JSON.stringify(campaign.trigger.event_pattern)) : "none: started by runs"),
          h("dt", {}, "your access"), h("dd", {}, campaign.access),
        ),
        may("editor") ? controls(campaign, path, output, context) : null,
      ),
      lineage,
    ),
    h(
      "section",
      { "aria-labelledby": "flow" },
      h("h2", { id: "flow" }, `Flow of version ${campaign.version}`),
      h("p", { class: "muted" }, "Each step with its runs' counts: entered, sent, replied, failed, converted."),
      diagram(campaign.flow, { counts: shown.counts, label: `flow of version ${campaign.version}` }),
    ),
    versionsSection(history, campaign, context),
    await diffSection(path, history, context),
    runsSection(runs.runs, context),
    sharesSection(campaign, path, may("manager"), context),
    may("editor") ? editorSection(campaign, path, context) : null,
    forkSection(campaign, path, context),
  );
  await fillLineage(lineage, campaign, context);
  return undefined;
}

// Publish the version shown (drafts never run) or stop the campaign: each a deliberate click.
function controls(campaign, path, output, context) {
  const here = `#/campaigns/${encodeURIComponent(campaign.id)}`;
  const publish = h("button", { type: "button" }, `Publish version ${campaign.version}`);
  publish.addEventListener("click", async () => {
    const done = await act(publish, output, () => api("POST", `${path}/publish`, { version: campaign.version }));
    if (done) context.go(`${here}?version=${campaign.version}`);
  });
  const stop = h("button", { type: "button", class: "danger" }, "Stop campaign");
  let armed = false;
  stop.addEventListener("click", async () => {
    if (!armed) {
      armed = true;
      stop.textContent = "Confirm: stop every run";
      return;
    }
    const done = await act(stop, output, () => api("POST", `${path}/stop`));
    if (done) context.go(`${here}?version=${campaign.version}`);
  });
  return h("p", { class: "row" }, campaign.live ? null : publish, campaign.published_version ? stop : null);
}

// The forked_from chain up to its root, each a link, and the forks of this one in its tenant.
async function fillLineage(section, campaign, context) {
  const chain = [];
  let origin = campaign.forked_from;
  let unreadable = null;
  while (origin && chain.length < LINEAGE_LIMIT) {
    try {
      const parent = await api("GET", withQuery(`/admin/campaigns/${encodeURIComponent(origin.campaign)}`, { version: origin.version }));
      chain.push({ parent, version: origin.version });
      origin = parent.forked_from;
    } catch (error) {
      unreadable = { origin, error };
      break;
    }
  }
  let forks = [];
  if (context.whoami.tenant === "*" || context.whoami.tenant === campaign.tenant) {
    try {
      const listing = await api("GET", withQuery("/admin/campaigns", { tenant: campaign.tenant, limit: 100 }));
      forks = listing.campaigns.filter((c) => c.forked_from && c.forked_from.campaign === campaign.id);
    } catch {
      // Forks are a convenience here: the chain above still shows.
    }
  }
  const link = (id, version, text) => h("a", { href: `#/campaigns/${encodeURIComponent(id)}?version=${version}` }, text);
  const steps = chain
    .slice()
    .reverse()
    .map(({ parent, version }) => h("li", {}, link(parent.id, version, `${parent.name} v${version}`), ` (${parent.tenant})`));
  replace(
    section,
    h("h2", { id: "lineage" }, "Lineage"),
    campaign.forked_from || unreadable
      ? h(
          "ol",
          { class: "lineage", "aria-label": "forked from, oldest first" },
          unreadable ? h("li", {}, h("code", {}, unreadable.origin.campaign), ` v${unreadable.origin.version}: ${unreadable.error.message}`) : null,
          steps,
          h("li", {}, h("strong", {}, `${campaign.name} (this campaign)`)),
        )
      : h("p", { class: "muted" }, "An original: not forked from another campaign."),
    forks.length
      ? h("div", {}, h("p", {}, "Forked into:"), h("ul", {}, forks.map((f) => h("li", {}, link(f.id, f.latest_version, f.name), ` from v${f.forked_from.version}`))))
      : null,
  );
}

function versionsSection(history, campaign, context) {
  const here = `#/campaigns/${encodeURIComponent(campaign.id)}`;
  return h(
    "section",
    { "aria-labelledby": "versions" },
    h("h2", { id: "versions" }, "Versions"),
    table(
      [
        { label: "Version", value: (v) => (v.version === campaign.version ? h("strong", {}, `v${v.version} (shown)`) : `v${v.version}`) },
        { label: "Saved", value: (v) => when(v.saved_at) },
        { label: "By", value: (v) => v.saved_by.name },
        { label: "Live", value: (v) => (v.live ? h("span", { class: "tag good" }, "live") : v.published_at ? "was live" : "draft") },
        { label: "Steps", value: (v) => v.steps },
        { label: "Runs entered", value: (v) => Object.values(v.counts).reduce((most, c) => Math.max(most, c.entered), 0) },
      ],
      history.versions.slice().reverse(),
      (v) => context.go(`${here}?version=${v.version}`),
    ),
  );
}

// Two versions side by side, added / removed / changed steps marked, and each changed field.
async function diffSection(path, history, context) {
  const section = h("section", { "aria-labelledby": "diff" }, h("h2", { id: "diff" }, "Compare versions"));
  const numbers = history.versions.map((v) => v.version);
  if (numbers.length < 2) {
    section.append(h("p", { class: "muted" }, "Only one version so far: save another to compare."));
    return section;
  }
  const params = context.params;
  const latest = numbers[numbers.length - 1];
  const to = numbers.includes(Number(params.get("to"))) ? Number(params.get("to")) : latest;
  const from = numbers.includes(Number(params.get("from"))) ? Number(params.get("from")) : numbers[numbers.indexOf(to) - 1] || numbers[0];
  const options = numbers.map((n) => [String(n), `v${n}`]);
  const fromSelect = select("from", options, String(from), "version");
  const toSelect = select("to", options, String(to), "version");
  const form = h("form", { class: "card filters", "aria-label": "Versions to compare" }, field("From", fromSelect), field("To", toSelect), h("button", { type: "submit" }, "Compare"));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const query = new URLSearchParams(params);
    query.set("from", fromSelect.value);
    query.set("to", toSelect.value);
    context.go(`#/campaigns/${encodeURIComponent(context.parts[0])}?${query}`);
  });
  section.append(form);
  try {
    const [change, before, after] = await Promise.all([
      api("GET", withQuery(`${path}/diff`, { from, to })),
      api("GET", withQuery(path, { version: from })),
      api("GET", withQuery(path, { version: to })),
    ]);
    const changed = new Set(change.steps.changed.map((c) => c.step));
    const marksBefore = new Map([...change.steps.removed.map((s) => [s, "removed"]), ...[...changed].map((s) => [s, "changed"])]);
    const marksAfter = new Map([...change.steps.added.map((s) => [s, "added"]), ...[...changed].map((s) => [s, "changed"])]);
    const nothing = !change.steps.added.length && !change.steps.removed.length && !changed.size && !change.start && !change.trigger;
    section.append(
      h(
        "p",
        { class: "row", "aria-label": "what changed" },
        h("span", { class: "tag good" }, `added ${change.steps.added.length}`),
        h("span", { class: "tag bad" }, `removed ${change.steps.removed.length}`),
        h("span", { class: "tag warn" }, `changed ${changed.size}`),
        nothing ? h("span", { class: "muted" }, "the two versions are the same") : null,
      ),
      diagramPair(
        { version: from, title: `v${from}`, flow: before.flow, marks: marksBefore },
        { version: to, title: `v${to}`, flow: after.flow, marks: marksAfter },
        `version ${from} beside version ${to}: removed and changed steps marked on the left, added and changed on the right`,
      ),
      changeList(change),
    );
  } catch (error) {
    section.append(errorBox(error));
  }
  return section;
}

function changeList(change) {
  const items = [];
  if (change.start) items.push(h("li", {}, "start: ", h("code", {}, change.start.from), " → ", h("code", {}, change.start.to)));
  for (const step of change.steps.added) items.push(h("li", {}, h("span", { class: "tag good" }, "added"), " ", h("code", {}, step)));
  for (const step of change.steps.removed) items.push(h("li", {}, h("span", { class: "tag bad" }, "removed"), " ", h("code", {}, step)));
  for (const step of change.steps.changed) {
    items.push(
      h(
        "li",
        {},
        h("span", { class: "tag warn" }, "changed"),
        " ",
        h("code", {}, step.step),
        h("ul", {}, step.fields.map((f) => h("li", {}, h("code", {}, f.field), ": ", show(f.from), " → ", show(f.to)))),
      ),
    );
  }
  if (change.trigger) {
    items.push(h("li", {}, h("span", { class: "tag warn" }, "trigger"), h("ul", {}, change.trigger.fields.map((f) => h("li", {}, h("code", {}, f.field || "(whole)"), ": ", show(f.from), " → ", show(f.to))))));
  }
  return items.length ? h("ul", { class: "changes" }, items) : null;
}

function show(value) {
  return value === null || value === undefined ? h("em", {}, "none") : h("code", {}, typeof value === "string" ? value : JSON.stringify(value));
}

function runsSection(runs, context) {
  const params = context.params;
  const state = params.get("state");
  const stateSelect = select("state", RUN_STATES, state, "any state");
  const form = h("form", { class: "filters", "aria-label": "Run filters" }, field("State", stateSelect), h("button", { type: "submit", class: "secondary" }, "Filter runs"));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const query = new URLSearchParams(params);
    if (stateSelect.value) query.set("state", stateSelect.value);
    else query.delete("state");
    context.go(`#/campaigns/${encodeURIComponent(context.parts[0])}?${query}`);
  });
  const detail = h("div", { "aria-live": "polite", tabindex: "-1" });
  const open = (run) => {
    replace(
      detail,
      h("h3", {}, "Run ", h("code", {}, run.id)),
      run.end_reason ? h("p", {}, "Ended: ", run.end_reason) : null,
      table(
        [
          { label: "Step", value: (s) => h("code", {}, s.step) },
          { label: "Outcome", value: (s) => h("span", { class: `tag ${outcomeClass(s.outcome)}` }, s.outcome) },
          { label: "At", value: (s) => when(s.at) },
          { label: "Reason", value: (s) => s.reason || "" },
        ],
        run.steps_done,
      ),
    );
    detail.focus();
  };
  const shown = runs.filter((r) => !state || r.state === state);
  return h(
    "section",
    { "aria-labelledby": "runs" },
    h("h2", { id: "runs" }, "Runs"),
    form,
    table(
      [
        { label: "Started", value: (r) => when(r.started_at) },
        { label: "Contact", value: (r) => r.contact.name || r.contact.phone || r.contact.id },
        { label: "Version", value: (r) => `v${r.version}` },
        { label: "State", value: (r) => h("span", { class: `tag ${r.state === "stopped" ? "bad" : r.state === "completed" ? "good" : "warn"}` }, r.state) },
        { label: "Step", value: (r) => (r.current_step ? h("code", {}, r.current_step) : "") },
        { label: "Waiting for", value: (r) => (r.waiting_for ? `${r.waiting_for}${r.wake_at ? ` until ${when(r.wake_at)}` : ""}` : "") },
        { label: "Steps done", value: (r) => r.steps_done.length },
      ],
      shown,
      open,
    ),
    detail,
  );
}

function outcomeClass(outcome) {
  if (/fail|timed_out|not_answered|stopped/.test(outcome)) return "bad";
  if (/sent|answered|replied|converted|done|delivered/.test(outcome)) return "good";
  return "warn";
}

function sharesSection(campaign, path, manage, context) {
  const output = h("div", { "aria-live": "polite" });
  const rows = table(
    [
      { label: "Shared with", value: (s) => (s.team ? `team ${s.team}` : h("code", {}, s.principal)) },
      { label: "Access", value: (s) => s.access },
      { label: "By", value: (s) => s.shared_by.name },
      { label: "At", value: (s) => when(s.shared_at) },
    ],
    campaign.shares,
  );
  let form = null;
  if (manage) {
    const kind = select("kind", [["principal", "a key (its key id)"], ["team", "a team"]], "principal", "share with");
    kind.required = true;
    const submit = h("button", { type: "submit" }, "Share");
    form = h(
      "form",
      { class: "card filters", "aria-label": "Share this campaign" },
      field("With", kind),
      field("Key id or team", h("input", { name: "grantee", required: true, maxlength: 64, autocomplete: "off" })),
      field("Access", select("access", [["viewer", "viewer (read, diff, fork)"], ["editor", "editor (save, publish)"]], "viewer", "access")),
      submit,
    );
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const chosen = new FormData(form);
      const body = { access: chosen.get("access"), [chosen.get("kind")]: chosen.get("grantee").trim() };
      const shared = await act(submit, output, () => api("POST", `${path}/shares`, body));
      if (shared) context.go(`#/campaigns/${encodeURIComponent(campaign.id)}?version=${campaign.version}`);
    });
  }
  return h("section", { "aria-labelledby": "shares" }, h("h2", { id: "shares" }, "Sharing"), rows, form, output);
}

// The version shown as JSON ({flow, trigger}); saving makes the next version after the latest.
function editorSection(campaign, path, context) {
  const start = { flow: withoutNulls(campaign.flow), trigger: campaign.trigger };
  const editor = h("textarea", { name: "definition", id: "definition", spellcheck: "false", rows: 22 }, JSON.stringify(start, null, 2));
  const output = h("div", { "aria-live": "polite" });
  const check = h("button", { type: "button", class: "secondary" }, "Check");
  const save = h("button", { type: "submit" }, `Save as version ${campaign.latest_version + 1}`);
  const parsed = () => {
    try {
      const value = JSON.parse(editor.value);
      if (!value || typeof value !== "object" || !value.flow) throw new Error('the definition is an object with "flow" (and "trigger" or null)');
      return { flow: value.flow, trigger: value.trigger || null };
    } catch (error) {
      replace(output, errorBox({ message: `Not saved: ${error.message}` }));
      return null;
    }
  };
  check.addEventListener("click", async () => {
    const definition = parsed();
    if (!definition) return;
    const body = { ...definition, ...(context.whoami.tenant === "*" ? { tenant: campaign.tenant } : {}) };
    const checked = await act(check, output, () => api("POST", "/admin/campaigns/validate", body));
    if (checked) replace(output, notice(`Valid: ${checked.steps} steps${checked.trigger ? ", with a trigger" : ""}. Nothing saved yet.`));
  });
  const form = h(
    "form",
    { class: "card", "aria-labelledby": "edit" },
    h("h2", { id: "edit" }, "Edit"),
    h("p", { class: "muted" }, `Starts from version ${campaign.version}. Saving writes version ${campaign.latest_version + 1}; it runs only once published. The format is in docs/campaigns.md.`),
    h("label", { for: "definition" }, "Flow and trigger (JSON)"),
    editor,
    h("p", { class: "row" }, check, save),
    output,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const definition = parsed();
    if (!definition) return;
    const body = { flow: definition.flow, expected_version: campaign.latest_version };
    if (definition.trigger) body.trigger = definition.trigger;
    const saved = await act(save, output, () => api("PUT", path, body));
    if (saved) context.go(`#/campaigns/${encodeURIComponent(campaign.id)}?version=${saved.version}`);
  });
  return form;
}

function forkSection(campaign, path, context) {
  const output = h("div", { "aria-live": "polite" });
  const submit = h("button", { type: "submit", class: "secondary" }, `Fork version ${campaign.version}`);
  const form = h(
    "form",
    { class: "card", "aria-labelledby": "fork" },
    h("h2", { id: "fork" }, "Fork"),
    h("p", { class: "muted" }, "A new campaign of your own from this version; its lineage links back here."),
    h("div", { class: "filters" }, field("Name of the copy", h("input", { name: "name", maxlength: 200, placeholder: `${campaign.name} (fork)` })), submit),
    output,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const name = new FormData(form).get("name");
    const body = { version: campaign.version, ...(name ? { name } : {}) };
    const forked = await act(submit, output, () => api("POST", `${path}/fork`, body));
    if (forked) context.go(`#/campaigns/${encodeURIComponent(forked.id)}`);
  });
  return form;
}

function withoutNulls(value) {
  if (Array.isArray(value)) return value.map(withoutNulls);
  if (value && typeof value === "object") {
    return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== null).map(([k, v]) => [k, withoutNulls(v)]));
  }
  return value;
}

// --- the diagram ----------------------------------------------------------------------------

// Where a step leads, with a label for each way out.
export function edgesOf(step) {
  const edges = [];
  if (step.type === "branch") {
    (step.cases || []).forEach((c, i) => edges.push([c.next, caseLabel(c.when, i)]));
    if (step.default) edges.push([step.default, "default"]);
    return edges;
  }
  if (step.next) edges.push([step.next, step.type === "wait_for_reply" ? "reply" : ""]);
  if (step.on_timeout) edges.push([step.on_timeout, "timeout"]);
  return edges;
}

function caseLabel(when, index) {
  const test = when || {};
  if (test.reply_words) return `“${test.reply_words.slice(0, 2).join("/")}”`;
  if (test.topic) return `topic ${test.topic}`;
  if (test.digits) return `digits ${test.digits}`;
  if (test.sentiment) return "sentiment";
  if (test.attribute) return `${test.attribute.name}`;
  return `case ${index + 1}`;
}

// Layers by distance from the start (breadth first); steps no path reaches go last.
export function layers(flow) {
  const depth = new Map([[flow.start, 0]]);
  const queue = [flow.start];
  while (queue.length) {
    const id = queue.shift();
    const step = flow.steps[id];
    if (!step) continue;
    for (const [next] of edgesOf(step)) {
      if (!depth.has(next) && flow.steps[next]) {
        depth.set(next, depth.get(id) + 1);
        queue.push(next);
      }
    }
  }
  const deepest = Math.max(0, ...depth.values());
  const rows = [];
  for (const id of Object.keys(flow.steps)) {
    const level = depth.has(id) ? depth.get(id) : deepest + 1;
    (rows[level] ||= []).push(id);
  }
  // Within a layer, the order they were reached in (the start's first way out on the left).
  const reached = [...depth.keys()];
  return rows.filter(Boolean).map((row) => row.sort((a, b) => order(reached, a) - order(reached, b)));
}

function order(reached, id) {
  const at = reached.indexOf(id);
  return at < 0 ? reached.length : at;
}

const NODE = { width: 190, height: 76, gapX: 26, gapY: 46, pad: 14, loop: 70 };
const MARK = {
  added: { fill: "#e2f3e7", stroke: "#1b7f3b", text: "+ added" },
  removed: { fill: "#fbe3e1", stroke: "#b3261e", text: "− removed" },
  changed: { fill: "#fbf0d9", stroke: "#8a5a00", text: "~ changed" },
};
let diagrams = 0;

export function diagram(flow, { counts = null, marks = new Map(), label = "campaign flow" } = {}) {
  const arrow = `arrow-${++diagrams}`;
  const drawn = flowGroup(flow, { counts, marks, arrow });
  return h(
    "div",
    { class: "scroll" },
    svg("svg", { class: "flow", width: drawn.width, height: drawn.height, viewBox: `0 0 ${drawn.width} ${drawn.height}`, role: "img", "aria-label": label }, arrowHead(arrow), drawn.group),
  );
}

// Two versions in one picture, side by side, each under its name: one scrolling box at any width.
export function diagramPair(left, right, label) {
  const arrow = `arrow-${++diagrams}`;
  const heading = 22;
  const drawn = [left, right].map((side) => ({ side, ...flowGroup(side.flow, { marks: side.marks, arrow }) }));
  const width = drawn[0].width + drawn[1].width;
  const height = heading + Math.max(drawn[0].height, drawn[1].height);
  let x = 0;
  const groups = drawn.map(({ side, group, width: sideWidth }) => {
    const placed = svg(
      "g",
      { "data-version": side.version, transform: `translate(${x},0)` },
      svg("text", { x: NODE.pad, y: 16, "font-size": 13, "font-weight": 700, fill: "#1d2330" }, side.title),
      svg("g", { transform: `translate(0,${heading})` }, group),
    );
    x += sideWidth;
    return placed;
  });
  return h(
    "div",
    { class: "scroll" },
    svg("svg", { class: "flow diff", width, height, viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": label }, arrowHead(arrow), groups),
  );
}

function arrowHead(id) {
  return svg("defs", {}, svg("marker", { id, viewBox: "0 0 10 10", refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse" }, svg("path", { d: "M0,0 L10,5 L0,10 z", fill: "#5b6475" })));
}

// The steps as boxes in layers and the ways between them as arrows; its size for placing it.
function flowGroup(flow, { counts = null, marks = new Map(), arrow }) {
  const rows = layers(flow);
  const widest = Math.max(1, ...rows.map((r) => r.length));
  const width = NODE.pad * 2 + widest * NODE.width + (widest - 1) * NODE.gapX + NODE.loop;
  const height = NODE.pad * 2 + rows.length * NODE.height + (rows.length - 1) * NODE.gapY;
  const place = new Map();
  rows.forEach((row, level) => {
    const rowWidth = row.length * NODE.width + (row.length - 1) * NODE.gapX;
    const left = NODE.pad + (width - NODE.loop - NODE.pad * 2 - rowWidth) / 2;
    row.forEach((id, i) => place.set(id, { x: left + i * (NODE.width + NODE.gapX), y: NODE.pad + level * (NODE.height + NODE.gapY), level }));
  });
  const edges = [];
  for (const [id, step] of Object.entries(flow.steps)) {
    const from = place.get(id);
    for (const [next, text] of edgesOf(step)) {
      const to = place.get(next);
      if (!to) continue;
      edges.push(edge(from, to, text, arrow, `${id} → ${next}${text ? ` (${text})` : ""}`));
    }
  }
  const nodes = Object.entries(flow.steps).map(([id, step]) => node(id, step, place.get(id), id === flow.start, counts && counts[id], marks.get(id)));
  return { group: svg("g", {}, edges, nodes), width, height };
}

function edge(from, to, text, arrow, title) {
  let d;
  let labelAt;
  if (to.level > from.level) {
    const x1 = from.x + NODE.width / 2;
    const y1 = from.y + NODE.height;
    const x2 = to.x + NODE.width / 2;
    const y2 = to.y;
    d = `M${x1},${y1} C${x1},${y1 + NODE.gapY / 2} ${x2},${y2 - NODE.gapY / 2} ${x2},${y2}`;
    labelAt = { x: (x1 + x2) / 2, y: (y1 + y2) / 2 + 4 };
  } else if (to.level === from.level) {
    // Beside it in the same layer: straight across.
    const rightwards = to.x > from.x;
    const x1 = rightwards ? from.x + NODE.width : from.x;
    const x2 = rightwards ? to.x : to.x + NODE.width;
    const y = from.y + NODE.height / 2;
    d = `M${x1},${y} L${x2},${y}`;
    labelAt = { x: (x1 + x2) / 2, y: y - 6 };
  } else {
    // Back to an earlier layer: round the right-hand side.
    const x1 = from.x + NODE.width;
    const y1 = from.y + NODE.height / 2;
    const x2 = to.x + NODE.width;
    const y2 = to.y + NODE.height / 2;
    const out = Math.max(x1, x2) + NODE.loop - 10;
    d = `M${x1},${y1} C${out},${y1} ${out},${y2} ${x2},${y2}`;
    labelAt = { x: out - 18, y: (y1 + y2) / 2 };
  }
  return svg(
    "g",
    { class: "edge" },
    svg("title", {}, title),
    svg("path", { d, fill: "none", stroke: "#5b6475", "stroke-width": 1.4, "marker-end": `url(#${arrow})` }),
    text ? svg("text", { x: labelAt.x, y: labelAt.y, "text-anchor": "middle", "font-size": 10, fill: "#1d2330", stroke: "#f6f7f9", "stroke-width": 3, "paint-order": "stroke" }, text) : null,
  );
}

function node(id, step, at, isStart, count, mark) {
  const style = MARK[mark] || { fill: "#ffffff", stroke: isStart ? "#1f5fbf" : "#8a93a3" };
  const c = count || null;
  const lines = c
    ? [`entered ${c.entered} · sent ${c.sent}`, `replied ${c.replied} · failed ${c.failed}${c.converted ? ` · converted ${c.converted}` : ""}`]
    : [];
  const summary = [`step ${id}: ${step.type}`, isStart ? "start" : null, mark || null, ...lines].filter(Boolean).join(", ");
  return svg(
    "g",
    { class: "step", "data-step": id, "data-change": mark || null, transform: `translate(${at.x},${at.y})` },
    svg("title", {}, summary),
    svg("rect", { width: NODE.width, height: NODE.height, rx: 6, fill: style.fill, stroke: style.stroke, "stroke-width": isStart || mark ? 2 : 1 }),
    svg("text", { x: 10, y: 18, "font-size": 13, "font-weight": 700, fill: "#1d2330" }, clip(id, 20)),
    svg("text", { x: NODE.width - 8, y: 18, "font-size": 10, "text-anchor": "end", fill: style.stroke }, mark ? MARK[mark].text : isStart ? "start" : ""),
    svg("text", { x: 10, y: 34, "font-size": 11, fill: "#5b6475" }, step.type.replace(/_/g, " ")),
    lines.map((line, i) => svg("text", { x: 10, y: 51 + i * 14, "font-size": 10.5, fill: "#1d2330", class: "counts" }, line)),
  );
}

function clip(text, length) {
  return text.length > length ? `${text.slice(0, length - 1)}…` : text;
}
