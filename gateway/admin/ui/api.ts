// The admin API as the UI calls it: JSON over fetch, with the admin token (kept in this
// tab's sessionStorage) when one was given; a 401 shows the token form until it is right.

import { byId, type Field, win } from "./dom.js";

const TOKEN_KEY = "lintel.admin.token";

/** An answer that was not a 2XX, with the server's text (it names what was wrong). */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    text: string,
  ) {
    super(`${status}: ${text.trim()}`);
  }
}

/** Called once a token is saved, to load again what failed. */
let retry: () => void = () => {};

function headers(): Record<string, string> {
  const token = win.sessionStorage.getItem(TOKEN_KEY);
  return token ? { authorization: `Bearer ${token}` } : {};
}

/** Shows the token form; what it saves is sent from then on. */
function askForToken(wrong: boolean): void {
  const form = byId("token-form");
  byId("token-wrong").hidden = !wrong;
  form.hidden = false;
}

export function setUpTokenForm(onToken: () => void): void {
  retry = onToken;
  byId("token-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const input = byId<Field>("token");
    win.sessionStorage.setItem(TOKEN_KEY, input.value.trim());
    input.value = "";
    byId("token-form").hidden = true;
    retry();
  });
}

export async function getJson<T>(path: string): Promise<T> {
  const res = await fetch(path, { headers: headers() });
  if (res.status === 401) askForToken(win.sessionStorage.getItem(TOKEN_KEY) !== null);
  if (!res.ok) throw new ApiError(res.status, await res.text());
  return (await res.json()) as T;
}
