// The admin API from the browser. The key lives in this tab's sessionStorage only: it is gone
// when the tab closes, never written to localStorage or a cookie, and sent only to this origin.
const KEY_NAME = "switchboard.apiKey";

export class ApiError extends Error {
  constructor(status, body) {
    const error = (body && body.error) || {};
    super(error.message || `the admin API answered ${status}`);
    this.status = status;
    this.code = error.code || String(status);
    this.problems = (error.details && error.details.problems) || [];
  }
}

export function storedKey() {
  return sessionStorage.getItem(KEY_NAME);
}

export function keepKey(key) {
  sessionStorage.setItem(KEY_NAME, key);
}

export function forgetKey() {
  sessionStorage.removeItem(KEY_NAME);
}

// One admin API call: JSON in, JSON out; a non-2xx answer throws ApiError with the API's message.
export async function api(method, path, body) {
  const headers = { Authorization: `Bearer ${storedKey() || ""}` };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    cache: "no-store",
  });
  const text = await response.text();
  let payload = null;
  if (text) {
    try {
      payload = JSON.parse(text);
    } catch {
      payload = { error: { message: text.slice(0, 300) } };
    }
  }
  if (!response.ok) throw new ApiError(response.status, payload);
  return payload;
}

// A path with query parameters, leaving out the empty ones.
export function withQuery(path, params) {
  const query = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== "") query.set(name, value);
  }
  const text = query.toString();
  return text ? `${path}?${text}` : path;
}
