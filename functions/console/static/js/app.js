// The console's shell: sign-in, navigation and the hash router (#/<page>/<id>?<filters>), so a
// page with its filters can be reloaded, bookmarked and shared (the key is not in it).
import { api, ApiError, forgetKey, keepKey, storedKey } from "./api.js";
import { errorBox, h, replace } from "./ui.js";

// Each page's module, loaded when first opened; the navigation is built from this list.
const PAGES = {
  events: ["Events", () => import("./pages/events.js")],
  connections: ["Connections", () => import("./pages/connections.js")],
  conversations: ["Conversations", () => import("./pages/conversations.js")],
  routing: ["Routing", () => import("./pages/routing.js")],
  campaigns: ["Campaigns", () => import("./pages/campaigns.js")],
  partners: ["Partners", () => import("./pages/partners.js")],
};
// Partner keys may use only their own subscriptions: their console has that page alone.
const HOME = { partner: "partners" };
const PARTNER_PAGES = ["partners"];

function visiblePages(role) {
  return Object.keys(PAGES).filter((name) => role !== "partner" || PARTNER_PAGES.includes(name));
}

const main = document.getElementById("main");
const nav = document.getElementById("nav");
const who = document.getElementById("who");
let whoami = null;
let stopPage = null;
let renders = 0; // only the newest render may draw: an older one still loading is dropped

export function route() {
  const [path, query = ""] = location.hash.replace(/^#/, "").split("?", 2);
  const parts = path.split("/").filter(Boolean).map(decodeURIComponent);
  return { page: parts[0] || "", parts: parts.slice(1), params: new URLSearchParams(query) };
}

export function go(hash) {
  if (location.hash === hash) render();
  else location.hash = hash;
}

async function signIn(key) {
  keepKey(key);
  try {
    whoami = await api("GET", "/admin/whoami");
  } catch (error) {
    forgetKey();
    whoami = null;
    throw error;
  }
}

function signOut() {
  forgetKey();
  whoami = null;
  go("#/");
}

function signInPage(problem) {
  const input = h("input", { type: "password", name: "key", autocomplete: "off", required: true, id: "api-key" });
  const output = h("div", { "aria-live": "polite" }, problem ? errorBox(problem) : null);
  const form = h(
    "form",
    {
      class: "card",
      onsubmit: async (event) => {
        event.preventDefault();
        try {
          await signIn(input.value.trim());
          input.value = "";
          render();
        } catch (error) {
          replace(output, errorBox(error.status === 401 || error.status === 403 ? new ApiError(error.status, { error: { message: "that key was not accepted" } }) : error));
        }
      },
    },
    h("h1", {}, "Sign in"),
    h(
      "p",
      { class: "muted" },
      "Paste an admin API key (made with `switchboard keys create`). It stays in this tab only and is forgotten when the tab closes.",
    ),
    h("label", { for: "api-key" }, "API key"),
    input,
    h("p", {}, h("button", { type: "submit" }, "Sign in")),
    output,
  );
  replace(main, form);
  nav.hidden = true;
  replace(who);
  input.focus();
}

function showPrincipal() {
  replace(nav, visiblePages(whoami.role).map((name) => h("a", { href: `#/${name}`, "data-page": name }, PAGES[name][0])));
  replace(
    who,
    h("span", {}, whoami.name, " · ", h("span", { class: "tag" }, whoami.role), " · tenant ", whoami.tenant),
    h("button", { type: "button", class: "secondary", onclick: signOut }, "Sign out"),
  );
  nav.hidden = false;
}

async function render() {
  const mine = ++renders;
  if (stopPage) {
    stopPage();
    stopPage = null;
  }
  if (!storedKey()) return signInPage();
  if (!whoami) {
    try {
      whoami = await api("GET", "/admin/whoami");
    } catch (error) {
      forgetKey();
      return signInPage(error);
    }
    if (mine !== renders) return undefined;
  }
  showPrincipal();
  const current = route();
  const home = PAGES[HOME[whoami.role]] ? HOME[whoami.role] : "events";
  const page = visiblePages(whoami.role).includes(current.page) ? current.page : home;
  for (const link of nav.querySelectorAll("a")) {
    if (link.dataset.page === page) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  // Each navigation renders into its own view: a slower page opened before (its API calls still
  // in flight) then writes into a view no longer shown, never over the page now open.
  delete main.dataset.ready;
  const view = h("div", { class: "view" }, h("p", { class: "muted" }, "Loading…"));
  replace(main, view);
  let stop;
  try {
    const module = await PAGES[page][1]();
    stop = await module.render(view, { ...current, page, whoami, go });
  } catch (error) {
    replace(view, errorBox(error));
  }
  const shown = mine === renders && main.contains(view);
  if (typeof stop === "function") {
    if (shown) stopPage = stop;
    else stop();
  }
  if (!shown) return undefined;
  document.title = `${page[0].toUpperCase()}${page.slice(1)} · Switchboard console`;
  main.dataset.ready = page; // the page has drawn what it first loads (tests and screenshots wait on it)
}

window.addEventListener("hashchange", render);
render();
