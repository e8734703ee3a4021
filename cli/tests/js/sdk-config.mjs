// Shared: build the SDK client from the environment, with the base URL redirected.
import { Client } from "@vippsmobilepay/sdk";
import { installLocalBaseUrl } from "./local-base-url.mjs";

export function env(name, fallback) {
  const v = process.env[name];
  return v === undefined || v === "" ? fallback : v;
}

export function makeClient() {
  const requests = installLocalBaseUrl(env("BASE_URL"));
  const cfg = {
    subscriptionKey: env("SUBSCRIPTION_KEY"),
    // Left undefined when MSN is unset: the SDK then sends the literal
    // header value "undefined" (see README.md); we keep its behaviour.
    merchantSerialNumber: env("MSN"),
    useTestMode: env("USE_TEST_MODE", "0") === "1",
    retryRequests: env("RETRY", "1") === "1",
  };
  for (const [key, name] of [
    ["systemName", "VIPPS_SYSTEM_NAME"],
    ["systemVersion", "VIPPS_SYSTEM_VERSION"],
    ["pluginName", "VIPPS_SYSTEM_PLUGIN_NAME"],
    ["pluginVersion", "VIPPS_SYSTEM_PLUGIN_VERSION"],
  ]) {
    const v = env(name);
    if (v !== undefined) cfg[key] = v;
  }
  return { client: Client(cfg), requests };
}

// The SDK returns { ok: true, data } or { ok: false, error } where error is an
// Error (message only survives JSON.stringify if we copy it) or the parsed
// JSON error body of a 4xx answer.
export function jsonable(result) {
  if (result && result.ok === false) {
    const e = result.error;
    return {
      ok: false,
      error: e instanceof Error ? e.message : e,
      ...(result.retry !== undefined ? { retry: result.retry } : {}),
    };
  }
  return result;
}

export function thrownToResult(err) {
  const cause = err && err.cause ? `: ${err.cause.code || err.cause.message || err.cause}` : "";
  return { ok: false, error: `${err && err.message ? err.message : String(err)}${cause}`, thrown: true };
}

export function timeoutGuard(print) {
  const ms = Number(env("TIMEOUT_MS", "20000"));
  const t = setTimeout(() => {
    print({ ok: false, error: `timeout after ${ms} ms` });
    process.exit(1);
  }, ms);
  t.unref();
}
