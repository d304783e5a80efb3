// Conversations: the queue by status, assignee and topic; one conversation as a single
// cross-channel timeline (social post, SMS, call, ticket in one column) with its topics, the
// sentiment trend, the routing reason, the notifications and the answers sent, and the staff
// answer and status change that admins and staff may make (the API decides; it says why not).
import { api, withQuery } from "../api.js";
import { act, errorBox, field, h, notice, replace, select, svg, table, when } from "../ui.js";

const STATUSES = ["open", "assigned", "waiting", "resolved"];
const FILTERS = ["tenant", "status", "assignee", "topic"];
// Who may answer customers and move conversations along (functions/admin/answers.py).
const ANSWERERS = ["admin", "staff"];
// Contact timeline pages read for one conversation: it lives on the contact's timeline among
// the person's other conversations, newest first.
const TIMELINE_PAGES = 3;
const QUEUE_PAGE = 50;
const LIVE_EVERY_MS = 5000;

export async function render(main, context) {
  if (context.parts[0]) return renderConversation(main, context, context.parts[0]);
  return renderQueue(main, context);
}

// --- the queue ----------------------------------------------------------------------------

async function renderQueue(main, context) {
  const params = context.params;
  const operator = context.whoami.tenant === "*";
  const tenant = params.get("tenant");
  // The filter choices are a convenience: without them the fields stay free text.
  const [responders, taxonomy] = await Promise.all([
    api("GET", withQuery("/admin/responders", { tenant })).catch(() => ({ responders: [] })),
    api("GET", withQuery("/admin/routing/taxonomy", { tenant })).catch(() => ({ taxonomy: { topics: [] } })),
  ]);
  const statusLinks = h(
    "p",
    { class: "row", "aria-label": "Queue by status" },
    ["", ...STATUSES].map((status) => {
      const query = new URLSearchParams(params);
      if (status) query.set("status", status);
      else query.delete("status");
      const current = (params.get("status") || "") === status;
      return h("a", { href: `#/conversations?${query}`, class: "tag", "aria-current": current ? "true" : null }, status || "all");
    }),
  );
  const form = h(
    "form",
    { class: "card filters", role: "search", "aria-label": "Conversation filters" },
    operator ? field("Tenant", h("input", { name: "tenant", value: tenant || "", required: true })) : null,
    field("Status", select("status", STATUSES, params.get("status"))),
    field(
      "Assignee",
      select(
        "assignee",
        responders.responders.map((r) => [r.id, `${r.name} (${r.id})`]),
        params.get("assignee"),
      ),
    ),
    field("Topic", select("topic", (taxonomy.taxonomy.topics || []).map((t) => t.name), params.get("topic"))),
    h("button", { type: "submit" }, "Apply"),
    h("label", { class: "inline" }, h("input", { type: "checkbox", name: "live", checked: params.get("live") !== "off" }), "Live"),
  );
  // An assignee or topic the lists do not hold (from a shared link) is still applied and shown.
  for (const name of ["assignee", "topic"]) {
    const chosen = params.get(name);
    const control = form.elements[name];
    if (chosen && control.value !== chosen) control.append(h("option", { value: chosen, selected: true }, chosen));
  }
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const chosen = new FormData(form);
    const query = new URLSearchParams();
    for (const name of FILTERS) if (chosen.get(name)) query.set(name, chosen.get(name));
    if (!chosen.get("live")) query.set("live", "off");
    context.go(`#/conversations?${query}`);
  });
  const output = h("div", { "aria-live": "polite" });
  const more = h("button", { type: "button", class: "secondary", hidden: true }, "More conversations");
  replace(main, h("h1", {}, "Conversations"), statusLinks, form, output, h("p", {}, more));

  let rows = [];
  let cursor = null;
  let firstPageSize = 0;
  let shown = "";
  const open = (row) => context.go(`#/conversations/${encodeURIComponent(row.id)}`);
  const fetchPage = (from) =>
    api(
      "GET",
      withQuery("/admin/conversations", {
        tenant,
        status: params.get("status"),
        assignee: params.get("assignee"),
        topic: params.get("topic"),
        limit: QUEUE_PAGE,
        cursor: from,
      }),
    );
  // Redrawn only when something changed, so a row keeps its keyboard focus between refreshes.
  const show = () => {
    const drawn = JSON.stringify(rows);
    if (drawn === shown) return;
    shown = drawn;
    replace(output, queueTable(rows, open));
  };
  async function load() {
    try {
      const page = await fetchPage(cursor);
      if (!cursor) firstPageSize = page.conversations.length;
      rows = rows.concat(page.conversations);
      cursor = page.next_cursor;
      more.hidden = !cursor;
      show();
    } catch (error) {
      shown = "";
      replace(output, errorBox(error));
    }
  }
  more.addEventListener("click", load);
  await load();
  // Live: conversations open, move between statuses and change hands while the queue is open,
  // so its first page is read again every few seconds; rows loaded with "More" stay below it.
  if (params.get("live") === "off") return undefined;
  const timer = setInterval(async () => {
    try {
      const page = await fetchPage(null);
      const fresh = new Set(page.conversations.map((c) => c.id));
      rows = page.conversations.concat(rows.slice(firstPageSize).filter((c) => !fresh.has(c.id)));
      firstPageSize = page.conversations.length;
      show();
    } catch {
      // A failed refresh keeps the queue shown; the next one tries again.
    }
  }, LIVE_EVERY_MS);
  return () => clearInterval(timer);
}

function queueTable(rows, open) {
  return table(
    [
      { label: "Last activity", value: (c) => when(c.last_activity_at) },
      { label: "Status", value: (c) => statusTag(c.status) },
      { label: "Assignee", value: (c) => c.assignee || h("span", { class: "muted" }, "nobody") },
      { label: "Queue", value: (c) => c.queue || "" },
      { label: "Channels", value: (c) => (c.channels || []).join(", ") },
      { label: "Topics", value: (c) => (c.topics || []).join(", ") },
      { label: "Sentiment", value: (c) => sentimentLine(c.sentiment_trend || [], 90, 22) },
      { label: "Conversation", value: (c) => h("code", {}, c.id) },
    ],
    rows,
    open,
  );
}

function statusTag(status) {
  const kind = { resolved: "good", waiting: "warn", open: "bad" }[status] || "";
  return h("span", { class: `tag ${kind}` }, status);
}

// The sentiment of each routed message, oldest to newest, as a line (-1 at the bottom, 1 at the top).
function sentimentLine(trend, width, height) {
  const label = trend.length ? `sentiment, oldest to newest: ${trend.map((s) => s.toFixed(2)).join(", ")}` : "no sentiment yet";
  if (!trend.length) return h("span", { class: "muted" }, "—");
  const pad = 3;
  const x = (i) => pad + (trend.length === 1 ? (width - 2 * pad) / 2 : (i * (width - 2 * pad)) / (trend.length - 1));
  const y = (s) => pad + ((1 - Math.max(-1, Math.min(1, s))) / 2) * (height - 2 * pad);
  const points = trend.map((s, i) => `${x(i).toFixed(1)},${y(s).toFixed(1)}`).join(" ");
  const last = trend[trend.length - 1];
  return svg(
    "svg",
    { class: "sentiment", width, height, viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": label },
    svg("title", {}, label),
    svg("line", { x1: pad, x2: width - pad, y1: y(0), y2: y(0), class: "zero" }),
    svg("polyline", { points, class: "trend" }),
    svg("circle", { cx: x(trend.length - 1), cy: y(last), r: 2.5, class: last < 0 ? "negative" : "positive" }),
  );
}

// --- one conversation ---------------------------------------------------------------------

async function renderConversation(main, context, id) {
  const conversation = await api("GET", `/admin/conversations/${encodeURIComponent(id)}`);
  const timelineSection = h("section", { class: "card", "aria-labelledby": "timeline" }, h("h2", { id: "timeline" }, "Timeline"), h("p", { class: "muted" }, "Loading…"));
  const header = h("div");
  const statusOutput = h("div", { "aria-live": "polite" });
  const showHeader = (shown) => replace(header, conversationHeader(shown));
  showHeader(conversation);
  const answerer = ANSWERERS.includes(context.whoami.role);
  replace(
    main,
    h("p", {}, h("a", { href: "#/conversations" }, "← Conversations")),
    header,
    answerer ? statusForm(conversation, statusOutput, showHeader) : null,
    timelineSection,
    answerer
      ? answerForm(conversation, () => loadTimeline(conversation, timelineSection))
      : h("p", { class: "muted" }, `A ${context.whoami.role} key may read this conversation; answering needs an admin or staff key.`),
  );
  await loadTimeline(conversation, timelineSection);
  return undefined;
}

function conversationHeader(conversation) {
  const facts = [
    ["status", statusTag(conversation.status)],
    ["assignee", conversation.assignee || "nobody"],
    ["queue", conversation.queue || "—"],
    ["priority", conversation.priority ?? "—"],
    ["routing reason", conversation.last_decision || "no rule decided (no rule set was in force, or none matched)"],
    ["topics", (conversation.topics || []).length ? conversation.topics.map((t) => h("span", { class: "tag" }, t)) : "—"],
    ["tags", (conversation.tags || []).length ? conversation.tags.map((t) => h("span", { class: "tag" }, t)) : "—"],
    ["urgency", conversation.urgency || "—"],
    ["channels", `${(conversation.channels || []).join(", ")} (${(conversation.providers || []).join(", ")})`],
    ["events", conversation.event_count],
    ["opened", when(conversation.opened_at)],
    ["last activity", when(conversation.last_activity_at)],
    ["answer due (SLA)", when(conversation.sla_due_at) || "—"],
    ["first response", when(conversation.first_response_at) || "none yet"],
    ["escalated", when(conversation.escalated_at) || "no"],
    [
      "contact",
      conversation.contact_id
        ? h("a", { href: `#/events?contact=${encodeURIComponent(conversation.contact_id)}` }, conversation.contact_id)
        : "—",
    ],
  ];
  const trend = conversation.sentiment_trend || [];
  return h(
    "div",
    {},
    h("h1", {}, "Conversation ", h("code", {}, conversation.id)),
    h(
      "div",
      { class: "grid2" },
      h(
        "section",
        { class: "card", "aria-labelledby": "facts" },
        h("h2", { id: "facts" }, "Where it stands"),
        h("dl", { class: "facts" }, facts.map(([name, value]) => [h("dt", {}, name), h("dd", {}, value)])),
      ),
      h(
        "section",
        { class: "card", "aria-labelledby": "sentiment" },
        h("h2", { id: "sentiment" }, "Sentiment trend"),
        h("p", { class: "muted" }, "Each routed message's sentiment, oldest to newest (−1 negative … 1 positive)."),
        sentimentLine(trend, 300, 80),
        trend.length ? h("p", { class: "muted" }, `latest ${trend[trend.length - 1].toFixed(2)} over ${trend.length} messages`) : null,
      ),
    ),
  );
}

function statusForm(conversation, output, showHeader) {
  const status = select("status", STATUSES, conversation.status, "choose");
  status.required = true;
  const assignee = h("input", { name: "assignee", value: conversation.assignee || "", maxlength: 64, size: 14 });
  const submit = h("button", { type: "submit" }, "Move");
  const quick = h(
    "button",
    { type: "button", class: "secondary" },
    conversation.status === "resolved" ? "Reopen" : "Close (resolved)",
  );
  const form = h(
    "form",
    { class: "card filters", "aria-label": "Conversation status" },
    field("Status", status),
    field("Assignee", assignee),
    submit,
    quick,
    output,
  );
  async function move(button, body) {
    const moved = await act(button, output, () => api("POST", `/admin/conversations/${encodeURIComponent(conversation.id)}/status`, body));
    if (moved) {
      Object.assign(conversation, moved);
      showHeader(moved);
      status.value = moved.status;
      assignee.value = moved.assignee || "";
      quick.textContent = moved.status === "resolved" ? "Reopen" : "Close (resolved)";
      replace(output, notice(`Now ${moved.status}${moved.assignee ? `, with ${moved.assignee}` : ""}.`));
    }
  }
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const body = { status: status.value };
    if (assignee.value.trim()) body.assignee = assignee.value.trim();
    move(submit, body);
  });
  quick.addEventListener("click", () => {
    const body = { status: conversation.status === "resolved" ? "open" : "resolved" };
    if (conversation.assignee) body.assignee = conversation.assignee;
    move(quick, body);
  });
  return form;
}

function answerForm(conversation, reload) {
  const text = h("textarea", { name: "text", required: true, maxlength: 4000, rows: 3, class: "short" });
  const visibility = select("visibility", [["public", "public reply"], ["private", "private message"]], null, "the channel's default");
  const submit = h("button", { type: "submit" }, "Send answer");
  const output = h("div", { "aria-live": "polite" });
  const form = h(
    "form",
    { class: "card", "aria-labelledby": "answer" },
    h("h2", { id: "answer" }, "Answer the customer"),
    h("p", { class: "muted" }, "It goes out on the channel the customer last wrote on (an SMS is answered by SMS, a ticket comment on the ticket)."),
    field("Answer", text),
    h("div", { class: "filters" }, field("Visibility (where both exist)", visibility), submit),
    output,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const body = { text: text.value };
    if (visibility.value) body.visibility = visibility.value;
    const queued = await act(submit, output, () => api("POST", `/admin/conversations/${encodeURIComponent(conversation.id)}/messages`, body));
    if (queued) {
      text.value = "";
      replace(output, notice(`Queued on ${queued.channel} to ${queued.to} (${queued.message_id}).`));
      await reload();
    }
  });
  return form;
}

// --- the timeline ---------------------------------------------------------------------------

async function loadTimeline(conversation, section) {
  const heading = h("h2", { id: "timeline" }, "Timeline");
  try {
    const [entries, messages] = await Promise.all([conversationEntries(conversation), api("GET", `/admin/conversations/${encodeURIComponent(conversation.id)}/messages`)]);
    replace(section, heading, timelineView(conversation, entries, messages.messages));
  } catch (error) {
    replace(section, heading, errorBox(error));
  }
}

// The contact's timeline entries that belong to this conversation, oldest first.
async function conversationEntries(conversation) {
  if (!conversation.contact_id) return [];
  const found = [];
  let cursor = null;
  for (let page = 0; page < TIMELINE_PAGES; page += 1) {
    const listed = await api("GET", withQuery(`/admin/contacts/${encodeURIComponent(conversation.contact_id)}/timeline`, { limit: 100, cursor }));
    found.push(...listed.events.filter((e) => e.conversation === conversation.id));
    cursor = listed.next_cursor;
    // Newest first: once past the conversation's opening (with a day's slack for provider clocks), nothing older is in it.
    const oldest = listed.events[listed.events.length - 1];
    if (!cursor || (oldest && new Date(oldest.occurred_at) < new Date(new Date(conversation.opened_at).getTime() - 86_400_000))) break;
  }
  return found.reverse();
}

// One column: what the customer sent on any channel, the hub's auto-replies, notifications
// and calls, and staff answers with their delivery state (from the messages listing).
function timelineView(conversation, entries, messages) {
  const answers = messages.filter((m) => m.message_id);
  const answerEvents = new Set(answers.map((m) => m.event_id));
  const items = entries
    // A staff answer's own events (sent, status) are shown once, as the answer with its state.
    .filter((e) => !(e.provider === "answers" || answerEvents.has(e.event_id)))
    .map((e) => ({ at: e.occurred_at, kind: kindOf(e), entry: e }))
    .concat(answers.map((m) => ({ at: m.at, kind: "answer", answer: m })))
    .sort((a, b) => new Date(a.at) - new Date(b.at));
  if (!items.length) return h("p", { class: "muted" }, "Nothing on this conversation's timeline yet.");
  return h(
    "ol",
    { class: "timeline", "aria-label": `Conversation ${conversation.id}, oldest first` },
    items.map((item) => (item.answer ? answerItem(conversation, item.answer) : entryItem(item))),
  );
}

// What a person would call it: a social post, an SMS, a call, a ticket...
function kindOf(entry) {
  const [entity] = entry.type.split(".");
  if (entry.type === "mention.created" || entry.type === "comment.created") return "social post";
  if (entity === "call") return "call";
  if (entity === "ticket") return "ticket";
  if (entity === "notification") return "notification";
  if (entity === "reply") return "auto-reply";
  if (entity === "campaign") return "campaign";
  if (entity === "message") {
    if (entry.channel === "telephony") return "SMS";
    if (entry.channel === "crm") return "CRM message";
    return entry.type === "message.sent" ? "message sent" : "message";
  }
  return entity;
}

function entryItem({ at, kind, entry }) {
  const failed = /failed$/.test(entry.type);
  return h(
    "li",
    { class: `item kind-${kind.replace(/[^a-z]+/gi, "-").toLowerCase()}${failed ? " failed" : ""}` },
    h(
      "div",
      { class: "row" },
      h("span", { class: `tag${failed ? " bad" : ""}` }, kind),
      h("code", {}, entry.type),
      h("span", { class: "muted" }, entry.provider, " · ", when(at)),
      h("a", { href: `#/events/${encodeURIComponent(entry.event_id)}`, "aria-label": `event ${entry.type} at ${when(at)}` }, "event"),
    ),
    entry.text ? h("p", { class: "said" }, entry.text) : null,
  );
}

function answerItem(conversation, answer) {
  const state = answer.state || "queued";
  const kind = { failed: "bad", delivered: "good", read: "good", sent: "good" }[state] || "warn";
  const output = h("div", { "aria-live": "polite" });
  const retry =
    state === "failed"
      ? h("button", { type: "button", class: "secondary" }, "Send again")
      : null;
  if (retry) {
    retry.addEventListener("click", async () => {
      const queued = await act(retry, output, () =>
        api("POST", `/admin/conversations/${encodeURIComponent(conversation.id)}/messages/${encodeURIComponent(answer.message_id)}/retry`),
      );
      if (queued) replace(output, notice(`Queued again (${queued.message_id}).`));
    });
  }
  const author = answer.author ? `${answer.author.name} (${answer.author.role})` : "";
  return h(
    "li",
    { class: "item kind-answer" },
    h(
      "div",
      { class: "row" },
      h("span", { class: "tag" }, "answer"),
      h("span", { class: `tag ${kind}` }, state),
      h("span", { class: "muted" }, `${answer.channel || ""} to ${answer.to || "?"} · ${author} · ${when(answer.at)}`),
      answer.event_id ? h("a", { href: `#/events/${encodeURIComponent(answer.event_id)}`, "aria-label": `answer event at ${when(answer.at)}` }, "event") : null,
    ),
    h("p", { class: "said" }, answer.text || ""),
    answer.reason ? h("p", { class: "muted" }, "reason: ", answer.reason) : null,
    (answer.history || []).length > 1
      ? h("p", { class: "muted" }, answer.history.map((t) => `${t.state} ${when(t.at)}${t.reason ? ` (${t.reason})` : ""}`).join(" → "))
      : null,
    retry,
    output,
  );
}
