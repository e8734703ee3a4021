// N concurrent token requests through one SDK client (client.auth.getToken()).
// env: as get-token.mjs, plus CONCURRENCY (default 25).
// stdout: one JSON line {"ok":n,"failed":n,"tokens":[distinct access_token],"errors":[distinct errors]}
// Exit 0 when every request succeeded, 1 otherwise.
import { env, jsonable, makeClient, thrownToResult, timeoutGuard } from "./sdk-config.mjs";

const print = (obj) => process.stdout.write(JSON.stringify(obj) + "\n");
timeoutGuard(print);

const n = Number(env("CONCURRENCY", "25"));
let results;
try {
  const { client } = makeClient();
  const id = env("CLIENT_ID");
  const secret = env("CLIENT_SECRET");
  results = await Promise.all(
    Array.from({ length: n }, () =>
      client.auth.getToken(id, secret).then(jsonable, thrownToResult),
    ),
  );
} catch (err) {
  results = [thrownToResult(err)];
}
const ok = results.filter((r) => r.ok === true);
const failed = results.filter((r) => r.ok !== true);
const tokens = [...new Set(ok.map((r) => r.data && r.data.access_token))];
const errors = [...new Set(failed.map((r) => JSON.stringify(r.error)))].map((s) => JSON.parse(s));
print({ ok: ok.length, failed: failed.length, tokens, errors });
process.exitCode = failed.length === 0 && ok.length === n ? 0 : 1;
