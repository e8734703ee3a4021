// Points the unmodified @vippsmobilepay/sdk at a local base URL.
//
// The SDK has no base-URL option and reads no environment variable: it
// hard-codes the origin in node_modules/@vippsmobilepay/sdk/esm/base_client_helper.js
// (lines 3-5: useTestMode ? "https://apitest.vipps.no" : "https://api.vipps.no")
// and sends the Request through the global `fetch` (esm/fetch.js line 45).
// So we wrap globalThis.fetch: a request for one of those two origins is
// re-addressed to BASE_URL (same path and query, same method, headers and
// body); any other URL is refused, so nothing can leave the machine.
const SDK_ORIGINS = new Set(["https://api.vipps.no", "https://apitest.vipps.no"]);

export function installLocalBaseUrl(baseUrl) {
  if (!baseUrl) throw new Error("BASE_URL is not set");
  const base = new URL(baseUrl);
  const realFetch = globalThis.fetch;
  const seen = [];
  globalThis.fetch = async (input, init) => {
    const req = new Request(input, init);
    const url = new URL(req.url);
    if (!SDK_ORIGINS.has(url.origin)) {
      throw new TypeError(`local-base-url: refusing non-SDK URL ${req.url}`);
    }
    // Keep a BASE_URL path prefix, if any (e.g. http://127.0.0.1:9/prefix).
    const prefix = base.pathname.replace(/\/$/, "");
    const target = new URL(prefix + url.pathname + url.search, base.origin);
    const body = req.body === null ? undefined : await req.arrayBuffer();
    seen.push({ sdkUrl: req.url, url: target.href, method: req.method });
    return realFetch(target, {
      method: req.method,
      headers: req.headers,
      body,
      redirect: "manual",
    });
  };
  return seen;
}
