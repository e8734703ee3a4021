// Runs Stoplight Prism in proxy mode in front of an upstream (the broker),
// sends one request per operation in the OpenAPI spec through it, and prints
// every violation Prism reports as ONE JSON line on stdout.
//
// usage: node prism-check.mjs <upstream-url> [spec-path]
// env:   CLIENT_ID CLIENT_SECRET SUBSCRIPTION_KEY MSN   values for the headers
//          (default: the documented example keys, MSN 123456)
//        ALLOW=digit-string[,media-type,jwt-not-byte,...]  kinds not counted as
//          unexpected (default "digit-string")
//        PRISM_ERRORS=1   run `prism proxy --errors` (answers 500 problem+json on
//          a violation, which hides the upstream body; default off)
//        PRISM_PORT (default: a free port)  TIMEOUT_MS (default 60000)
// needs: `npm ci` in ./prism (Prism 5.14.2 and js-yaml live there).
// exit:  0 = ran, no unexpected violation; 1 = unexpected violations;
//        2 = could not run (Prism did not start, a request failed, ...).
//
// How Prism reports (seen with 5.14.2): every proxied answer carries a header
// `sl-violations: [{"location":[...],"severity":"Error","code":...,"message":...}]`
// (request and response violations), and Prism logs one stdout line per
// violation: "[VALIDATOR] ✖  error     Violation: response.body.expires_in ...".
// Prism's own exit code says nothing (it keeps running).
import { spawn } from "node:child_process";
import { createRequire } from "node:module";
import net from "node:net";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const prismDir = path.join(here, "prism");
const requireP = createRequire(path.join(prismDir, "package.json"));

const out = (obj, code) => {
  process.stdout.write(JSON.stringify(obj) + "\n");
  process.exit(code);
};
const fail = (error, extra = {}) => out({ ok: false, error, ...extra }, 2);

const env = (n, d) => (process.env[n] === undefined || process.env[n] === "" ? d : process.env[n]);
const upstream = process.argv[2] || env("UPSTREAM");
const spec = path.resolve(process.argv[3] || env("SPEC", path.join(here, "../../../openapi/access-token.yaml")));
if (!upstream) fail("usage: node prism-check.mjs <upstream-url> [spec-path]");
const allow = new Set(env("ALLOW", "digit-string").split(",").map((s) => s.trim()).filter(Boolean));
const withErrors = env("PRISM_ERRORS", "0") === "1";
const timeoutMs = Number(env("TIMEOUT_MS", "60000"));
const creds = {
  client_id: env("CLIENT_ID", "fb492b5e-7907-4d83-ba20-c7fb60ca35de"),
  client_secret: env("CLIENT_SECRET", "Y8Kteew6GE2ZmeycEt6egg=="),
  "ocp-apim-subscription-key": env("SUBSCRIPTION_KEY", "0f14ebcab0ec4b29ae0cb90d91b4a84a"),
  "merchant-serial-number": env("MSN", "123456"),
};

let yaml, prismBin, prismVersion;
try {
  yaml = requireP("js-yaml");
  const pkg = requireP.resolve("@stoplight/prism-cli/package.json");
  prismVersion = requireP("@stoplight/prism-cli/package.json").version;
  prismBin = path.join(path.dirname(pkg), "dist", "index.js");
} catch (e) {
  fail(`prism not installed: run 'npm ci' in ${prismDir} (${e.message})`);
}

// ---- the spec: operations and the request to send for each -------------
const fs = await import("node:fs");
let doc;
try {
  doc = yaml.load(fs.readFileSync(spec, "utf8"));
} catch (e) {
  fail(`cannot read spec ${spec}: ${e.message}`);
}
const deref = (o) => {
  let seen = 0;
  while (o && o.$ref && seen++ < 20) {
    if (!o.$ref.startsWith("#/")) throw new Error(`external $ref not supported: ${o.$ref}`);
    o = o.$ref.slice(2).split("/").reduce((a, k) => a && a[k.replace(/~1/g, "/").replace(/~0/g, "~")], doc);
  }
  return o;
};
const exampleOf = (schema, p) => {
  schema = deref(schema) || {};
  if (p && p.example !== undefined) return p.example;
  if (schema.example !== undefined) return schema.example;
  if (schema.default !== undefined) return schema.default;
  if (Array.isArray(schema.enum) && schema.enum.length) return schema.enum[0];
  if (schema.type === "object" || schema.properties) {
    const o = {};
    for (const [k, v] of Object.entries(schema.properties || {})) o[k] = exampleOf(v);
    return o;
  }
  return undefined;
};

const METHODS = ["get", "put", "post", "delete", "options", "head", "patch", "trace"];
const operations = [];
for (const [p, item] of Object.entries(doc.paths || {})) {
  for (const m of METHODS) {
    const op = item[m];
    if (!op) continue;
    const headers = {};
    let urlPath = p;
    for (const raw of [...(item.parameters || []), ...(op.parameters || [])]) {
      const prm = deref(raw);
      const lname = String(prm.name).toLowerCase();
      let v = lname in creds ? creds[lname] : exampleOf(prm.schema, prm);
      if (v === undefined) continue;
      if (prm.in === "header") headers[prm.name] = String(v);
      else if (prm.in === "path") urlPath = urlPath.replace(`{${prm.name}}`, encodeURIComponent(String(v)));
      else if (prm.in === "query") urlPath += (urlPath.includes("?") ? "&" : "?") + `${encodeURIComponent(prm.name)}=${encodeURIComponent(String(v))}`;
    }
    // HTTP Basic security -> Authorization from CLIENT_ID/CLIENT_SECRET.
    for (const req of op.security || doc.security || []) {
      for (const name of Object.keys(req)) {
        const s = deref((doc.components?.securitySchemes || {})[name]);
        if (s && s.type === "http" && String(s.scheme).toLowerCase() === "basic") {
          headers.Authorization = "Basic " + Buffer.from(`${creds.client_id}:${creds.client_secret}`).toString("base64");
        }
      }
    }
    let body;
    const rb = deref(op.requestBody);
    if (rb && rb.content) {
      const [ct, media] = Object.entries(rb.content)[0];
      const ex = media.example !== undefined ? media.example : exampleOf(media.schema);
      if (ct.startsWith("application/x-www-form-urlencoded")) {
        body = new URLSearchParams(ex || {}).toString();
      } else if (ct.includes("json")) {
        body = JSON.stringify(ex === undefined ? {} : ex);
      } else if (ex !== undefined) {
        body = String(ex);
      }
      if (body !== undefined) headers["Content-Type"] = ct;
    }
    operations.push({ method: m.toUpperCase(), path: p, urlPath, headers, body });
  }
}
if (!operations.length) fail(`no operations in ${spec}`);

// ---- start Prism ---------------------------------------------------------
const freePort = () =>
  new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
const port = Number(env("PRISM_PORT", "0")) || (await freePort());
const args = [prismBin, "proxy", spec, upstream, "--port", String(port), "--host", "127.0.0.1"];
if (withErrors) args.push("--errors");
const child = spawn(process.execPath, args, { stdio: ["ignore", "pipe", "pipe"] });
const logLines = [];
let buf = "";
let onLine = () => {};
const feed = (chunk) => {
  buf += chunk;
  let i;
  while ((i = buf.indexOf("\n")) >= 0) {
    // strip ANSI colours, in case a terminal-like env turns them on
    const line = buf.slice(0, i).replace(/\x1b\[[0-9;]*m/g, "");
    buf = buf.slice(i + 1);
    logLines.push(line);
    onLine(line);
  }
};
child.stdout.setEncoding("utf8").on("data", feed);
child.stderr.setEncoding("utf8").on("data", feed);
const stopPrism = () => {
  if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
};
process.on("exit", stopPrism);
const guard = setTimeout(() => {
  stopPrism();
  fail(`timeout after ${timeoutMs} ms`, { prism_log: logLines });
}, timeoutMs);
guard.unref();

await new Promise((resolve) => {
  onLine = (l) => {
    if (l.includes("Prism is listening")) resolve();
  };
  child.on("exit", (code, sig) => {
    fail(`prism exited (code ${code}, signal ${sig}) before/while the check ran`, { prism_log: logLines });
  });
});

// ---- one request per operation -------------------------------------------
const JWT = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/;
const bodyAt = (body, loc) => loc.reduce((a, k) => (a && typeof a === "object" ? a[k] : undefined), body);
const classify = (v, body) => {
  const loc = v.location || [];
  if (loc[0] === "request") return "request";
  if (loc[0] === "response" && loc.length === 1 && /media type/i.test(v.message || "")) return "media-type";
  if (loc[0] === "response" && loc[1] === "body") {
    const value = bodyAt(body, loc.slice(2));
    if (v.code === "type" && /must be integer/.test(v.message || "")) {
      if (body === undefined) return "integer-type-unverified";
      if (typeof value === "string" && /^[0-9]+$/.test(value)) return "digit-string";
    }
    if ((v.code === "format" || v.code === "pattern") && typeof value === "string" && JWT.test(value)) return "jwt-not-byte";
    if ((v.code === "format" || v.code === "pattern") && body === undefined) return "format-unverified";
  }
  return "other";
};

const requests = [];
for (const op of operations) {
  const logStart = logLines.length;
  let res;
  try {
    res = await fetch(`http://127.0.0.1:${port}${op.urlPath}`, {
      method: op.method,
      headers: op.headers,
      body: op.body,
      redirect: "manual",
    });
  } catch (e) {
    fail(`request ${op.method} ${op.urlPath} through prism failed: ${e.message}${e.cause ? ` (${e.cause.code || e.cause.message})` : ""}`, { prism_log: logLines });
  }
  const text = await res.text();
  let body;
  try {
    body = JSON.parse(text);
  } catch {
    body = text === "" ? undefined : text;
  }
  let violations = [];
  const hdr = res.headers.get("sl-violations");
  if (hdr) {
    try {
      violations = JSON.parse(hdr);
    } catch {
      violations = [{ location: [], severity: "Error", code: "unparsable-sl-violations", message: hdr }];
    }
  }
  // Prism logs the upstream's status after it answers: wait for that line (bounded), unless
  // Prism made the answer itself (problem+json), when no such line comes.
  const upstreamLogged = () => logLines.slice(logStart).some((l) => /The upstream call to .* has returned/.test(l));
  const madeByPrism = /problem\+json/.test(res.headers.get("content-type") || "");
  for (const deadline = Date.now() + 5000; !madeByPrism && !upstreamLogged() && Date.now() < deadline; ) {
    await new Promise((r) => setTimeout(r, 10));
  }
  const log = logLines.slice(logStart);
  // Prism logs "[PROXY] ... The upstream call to /x has returned 200" only when
  // the upstream answered.
  const upstreamLine = log.map((l) => l.match(/The upstream call to .* has returned (\d+)/)).find(Boolean);
  const upstreamStatus = upstreamLine ? Number(upstreamLine[1]) : null;
  // Answers Prism made itself (application/problem+json): with --errors on a
  // violation ("https://stoplight.io/prism/errors#VIOLATIONS", status 500;
  // the upstream body is then gone, so digit strings cannot be verified),
  // "...#UNPROCESSABLE_ENTITY" (422, request invalid, never forwarded), or
  // "FetchError" (500, upstream unreachable).
  const prismMade =
    /problem\+json/.test(res.headers.get("content-type") || "") &&
    body && typeof body === "object" && typeof body.type === "string" &&
    (body.type.startsWith("https://stoplight.io/prism/errors#") || upstreamStatus === null || res.status !== upstreamStatus);
  const prismError = prismMade ? body.type.replace(/^https:\/\/stoplight\.io\/prism\/errors#/, "") : null;
  const upstreamBody = prismMade ? undefined : body;
  if (!hdr && prismMade && Array.isArray(body.validation)) {
    violations = body.validation.map((v) =>
      prismError === "UNPROCESSABLE_ENTITY" && v.location && v.location[0] !== "request" ? { ...v, location: ["request", ...v.location] } : v,
    );
  }
  requests.push({
    method: op.method,
    path: op.path,
    request_headers: op.headers,
    ...(op.body !== undefined ? { request_body: op.body } : {}),
    status: res.status,
    upstream_status: upstreamStatus,
    content_type: res.headers.get("content-type"),
    body,
    prism_error: prismError,
    violations: violations.map((v) => ({ kind: classify(v, upstreamBody), ...v })),
    log,
  });
}
clearTimeout(guard);
child.removeAllListeners("exit");
stopPrism();

const all = requests.flatMap((r) => r.violations.map((v) => ({ method: r.method, path: r.path, ...v })));
const unexpected = all.filter((v) => !allow.has(v.kind));
const prismErrors = requests.filter((r) => r.prism_error && r.prism_error !== "VIOLATIONS");
// Not reaching the upstream (other than Prism refusing an invalid request) means
// the check did not run.
const unreached = requests.filter((r) => r.upstream_status === null && r.prism_error !== "UNPROCESSABLE_ENTITY");
out(
  {
    ok: unreached.length === 0,
    ...(unreached.length ? { error: `upstream not reached: ${unreached.map((r) => `${r.method} ${r.path}: ${r.prism_error} ${r.body && r.body.title}`).join("; ")}` } : {}),
    prism: { version: prismVersion, port, errors_flag: withErrors, spec, upstream },
    allow: [...allow],
    requests,
    violations: all,
    unexpected,
    prism_errors: prismErrors.map((r) => `${r.method} ${r.path}: ${r.prism_error}`),
  },
  unreached.length ? 2 : unexpected.length || prismErrors.length ? 1 : 0,
);
