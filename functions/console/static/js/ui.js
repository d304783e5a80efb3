// Small DOM helpers. Text from the API is only ever set as text (never parsed as HTML), so a
// payload that carries markup is shown, not run.

export function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on") && typeof value === "function") element.addEventListener(name.slice(2), value);
    else if (name === "dataset") Object.assign(element.dataset, value);
    else element.setAttribute(name, value === true ? "" : String(value));
  }
  append(element, children);
  return element;
}

function append(element, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

// An SVG element (charts, diagrams): the same rules as h().
export function svg(tag, attributes = {}, ...children) {
  const element = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [name, value] of Object.entries(attributes || {})) {
    if (value !== undefined && value !== null) element.setAttribute(name, String(value));
  }
  append(element, children);
  return element;
}

export function replace(container, ...children) {
  container.replaceChildren();
  append(container, children);
}

// The API's refusal as the person should read it: its message and each problem it named.
export function errorBox(error) {
  const problems = (error && error.problems) || [];
  return h(
    "div",
    { class: "error", role: "alert" },
    h("strong", {}, error && error.status ? `${error.status}: ` : "", (error && error.message) || String(error)),
    problems.length
      ? h("ul", {}, problems.map((p) => h("li", {}, [p.in, p.field].filter(Boolean).join(" "), ": ", p.problem)))
      : null,
  );
}

export function notice(text) {
  return h("div", { class: "notice", role: "status" }, text);
}

export function json(value) {
  return h("pre", { tabindex: "0" }, JSON.stringify(value, null, 2));
}

export function when(iso) {
  if (!iso) return "";
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? String(iso) : date.toISOString().replace("T", " ").replace(/\.\d+Z$/, "Z");
}

// A table whose rows may open something: Enter or a click on a row calls onOpen(row).
export function table(columns, rows, onOpen) {
  const head = h("tr", {}, columns.map((c) => h("th", { scope: "col" }, c.label)));
  const body = rows.map((row) => {
    const cells = columns.map((c) => h("td", {}, c.value(row)));
    if (!onOpen) return h("tr", {}, cells);
    return h(
      "tr",
      {
        class: "clickable",
        tabindex: "0",
        onclick: () => onOpen(row),
        onkeydown: (event) => {
          if (event.key === "Enter") onOpen(row);
        },
      },
      cells,
    );
  });
  return h(
    "div",
    { class: "scroll" },
    h("table", {}, h("thead", {}, head), h("tbody", {}, body.length ? body : h("tr", {}, h("td", { colspan: columns.length, class: "muted" }, "Nothing here yet.")))),
  );
}

export function field(label, input) {
  return h("label", {}, label, input);
}

export function select(name, options, selected, emptyLabel = "any") {
  return h(
    "select",
    { name },
    h("option", { value: "" }, emptyLabel),
    options.map((o) => {
      const [value, text] = Array.isArray(o) ? o : [o, o];
      return h("option", { value, selected: value === selected }, text);
    }),
  );
}

// Runs an action from a button: disables it meanwhile, shows the API's refusal next to it.
export async function act(button, output, action) {
  button.disabled = true;
  try {
    const result = await action();
    return result;
  } catch (error) {
    replace(output, errorBox(error));
    return undefined;
  } finally {
    button.disabled = false;
  }
}
