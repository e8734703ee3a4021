// One access token through the official SDK's own call: client.auth.getToken().
// env: BASE_URL CLIENT_ID CLIENT_SECRET SUBSCRIPTION_KEY [MSN] [USE_TEST_MODE=0|1]
//      [RETRY=1|0] [VIPPS_SYSTEM_NAME ...] [TIMEOUT_MS=20000]
// stdout: one JSON line, the SDK's result: {"ok":true,"data":{...token response...}}
//         or {"ok":false,"error":...}. Exit 0 on ok, 1 otherwise.
import { env, jsonable, makeClient, thrownToResult, timeoutGuard } from "./sdk-config.mjs";

const print = (obj) => process.stdout.write(JSON.stringify(obj) + "\n");
timeoutGuard(print);

let result;
try {
  const { client } = makeClient();
  result = jsonable(await client.auth.getToken(env("CLIENT_ID"), env("CLIENT_SECRET")));
} catch (err) {
  // The SDK does not catch fetch() rejections (connection refused etc.).
  result = thrownToResult(err);
}
print(result);
process.exitCode = result && result.ok === true ? 0 : 1;
