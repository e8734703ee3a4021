// TEST-ONLY stand-in for the token API, to exercise the scripts here without
// the real broker. Not used by the Rust tests.
// env: PORT (default 0 = any free port), CONTENT_TYPE (of the 200 answer,
//      default "application/json; charset=utf-8"), STATUS_SEQ (e.g. "500,500,401": the
//      first answers use these statuses, later ones 200), DELAY_MS (default 0).
// stdout: first line {"listening":<port>}, then one JSON line per request:
//         {"method","url","headers":{...raw header name -> value...},"body"}.
import http from "node:http";

const TOKEN_BODY = JSON.stringify({
  token_type: "Bearer",
  expires_in: "3599",
  ext_expires_in: "3599",
  expires_on: "1700003599",
  not_before: "1700000000",
  resource: "00000002-0000-0000-c000-000000000000",
  access_token: "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.e30.c2ln",
});
const statusSeq = (process.env.STATUS_SEQ || "").split(",").filter(Boolean).map(Number);
const delay = Number(process.env.DELAY_MS || "0");
const contentType = process.env.CONTENT_TYPE || "application/json; charset=utf-8";
const log = (o) => process.stdout.write(JSON.stringify(o) + "\n");

const server = http.createServer((req, res) => {
  const chunks = [];
  req.on("data", (c) => chunks.push(c));
  req.on("end", () => {
    const headers = {};
    for (let i = 0; i < req.rawHeaders.length; i += 2) headers[req.rawHeaders[i]] = req.rawHeaders[i + 1];
    log({ method: req.method, url: req.url, headers, body: Buffer.concat(chunks).toString("utf8") });
    setTimeout(() => {
      const status = statusSeq.length ? statusSeq.shift() : 200;
      if (req.method === "POST" && req.url === "/accesstoken/get" && status === 200) {
        res.writeHead(200, { "content-type": contentType });
        res.end(TOKEN_BODY);
      } else if (status === 401) {
        res.writeHead(401, { "content-type": "application/json; charset=utf-8" });
        res.end(JSON.stringify({ error: "unauthorized_client", error_description: "fake 401" }));
      } else {
        res.writeHead(status === 200 ? 404 : status, { "content-type": "text/plain" });
        res.end(status === 200 ? "not found" : `fake ${status}`);
      }
    }, delay);
  });
});
server.listen(Number(process.env.PORT || "0"), "127.0.0.1", () => log({ listening: server.address().port }));
for (const sig of ["SIGINT", "SIGTERM"]) process.on(sig, () => server.close(() => process.exit(0)));
