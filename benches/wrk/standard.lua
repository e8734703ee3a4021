-- wrk script: the standard flow, POST /accesstoken/get, with the documented example keys
-- that `vipps-token mock` accepts. Usage (see BENCHMARKS.md):
--   wrk -t2 -c32 -d10s --latency -s benches/wrk/standard.lua http://127.0.0.1:8080/accesstoken/get
wrk.method = "POST"
wrk.headers["client_id"] = "fb492b5e-7907-4d83-ba20-c7fb60ca35de"
wrk.headers["client_secret"] = "Y8Kteew6GE2ZmeycEt6egg=="
wrk.headers["Ocp-Apim-Subscription-Key"] = "0f14ebcab0ec4b29ae0cb90d91b4a84a"
wrk.headers["Content-Length"] = "0"
