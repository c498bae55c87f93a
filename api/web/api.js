// The API client: every request carries the API key kept in this browser session (sessionStorage),
// and a 401 sends the user back to the sign-in prompt instead of showing an error.
const KEY = "ollystack.apiKey";

export class AuthRequired extends Error {}

export class ApiError extends Error {
  constructor(status, message, body) {
    super(message);
    this.status = status;
    this.body = body;
  }
}

export const authRequired = () =>
  document.querySelector('meta[name="ollystack-auth"]')?.content === "required";
export const apiKey = () => sessionStorage.getItem(KEY);
export const setApiKey = (key) => sessionStorage.setItem(KEY, key);
export const clearApiKey = () => sessionStorage.removeItem(KEY);

function headers(extra = {}) {
  const key = apiKey();
  return key ? { ...extra, Authorization: `Bearer ${key}` } : extra;
}

function url(path, params = {}) {
  const found = new URL(path, location.origin);
  for (const [name, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== "") found.searchParams.set(name, String(value));
  }
  return found;
}

async function answer(response) {
  if (response.status === 401) {
    clearApiKey();
    throw new AuthRequired("an API key is required");
  }
  const body = await response.json().catch(() => null);
  if (!response.ok) {
    const message = body?.message || body?.error || response.statusText;
    throw new ApiError(response.status, message, body);
  }
  return body;
}

function needKey() {
  // Without a key the request would only earn a 401: ask first.
  if (authRequired() && !apiKey()) throw new AuthRequired("an API key is required");
}

export async function get(path, params = {}, signal = undefined) {
  needKey();
  return answer(await fetch(url(path, params), { headers: headers(), signal }));
}

export async function post(path, body, signal = undefined) {
  needKey();
  return answer(await fetch(url(path), {
    method: "POST", headers: headers({ "Content-Type": "application/json" }), body: JSON.stringify(body), signal,
  }));
}

// Server-sent events read through fetch, because EventSource cannot send the Authorization
// header. Calls onOpen() once the server answered, then onEvent({event, data, id}) per event
// until ``signal`` aborts; resolves then.
export async function stream(path, params, onEvent, signal, onOpen = () => {}, lastEventId = null) {
  needKey();
  const extra = lastEventId ? { Accept: "text/event-stream", "Last-Event-ID": lastEventId } : { Accept: "text/event-stream" };
  const response = await fetch(url(path, params), { headers: headers(extra), signal });
  if (!response.ok) return answer(response);
  onOpen();
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return undefined;
      buffer += value;
      let end;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const event = { event: "message", data: "", id: null };
        for (const line of block.split("\n")) {
          const colon = line.indexOf(":");
          if (colon <= 0) continue; // a comment (keepalive) or an empty line
          const field = line.slice(0, colon);
          const text = line.slice(colon + 1).replace(/^ /, "");
          if (field === "data") event.data += (event.data ? "\n" : "") + text;
          else if (field === "event") event.event = text;
          else if (field === "id") event.id = text;
        }
        if (event.data) onEvent(event);
      }
    }
  } catch (error) {
    if (signal?.aborted) return undefined;
    throw error;
  }
}
