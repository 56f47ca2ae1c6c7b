// The HTTP API mounted with createCreditHandler over MemoryStorage in Express (the package named
// by argv[2], default "express"), behind a global express.json() and under a mount path, from
// plain ESM JavaScript; prints what real requests answered as JSON for
// release/test/consumer.test.ts.
import { once } from "node:events"
import { createRequire } from "node:module"
import { CreditError } from "@creditlock/core"
import { createCreditHandler } from "@creditlock/http"
import { MemoryStorage } from "@creditlock/memory"

const expressName = process.argv[2] ?? "express"
const { default: express } = await import(expressName)
const expressVersion = createRequire(import.meta.url)(`${expressName}/package.json`).version

let refused = null
try {
  await createCreditHandler({ storage: MemoryStorage.layer(), credentials: [{ token: "has space", customers: ["*"] }] })
} catch (error) {
  if (!(error instanceof CreditError)) throw error
  refused = { status: error.status, code: error.code, namesField: error.message.includes("credentials[0].token") }
}

const token = "consumer-admin-token"
const credit = await createCreditHandler({
  storage: MemoryStorage.layer(),
  credentials: [{ token, customers: ["*"] }],
  logRequests: false,
})
const app = express()
app.use(express.json())
app.use("/billing", credit.handler)
app.get("/status", (_req, res) => res.send("app ok"))
const server = app.listen(0, "127.0.0.1")
await once(server, "listening")
const base = `http://127.0.0.1:${server.address().port}`
const headers = { authorization: `Bearer ${token}`, "content-type": "application/json" }
const holder = `${base}/billing/credit/v1/customers/cus_1001/contracts/sub_42`

const call = async (url, init = {}) => {
  const response = await fetch(url, init)
  const text = await response.text()
  return { status: response.status, body: text === "" ? null : JSON.parse(text) }
}

try {
  const opened = await call(holder, { method: "PUT", headers, body: JSON.stringify({ balanceGroupId: "bg-1001" }) })
  const locked = await call(`${holder}/_lock`, { method: "PUT", headers })
  const modify = {
    method: "PUT",
    headers: { ...headers, "x-lock-key": locked.body.data.lock.key, "idempotency-key": "top-up-1" },
    body: JSON.stringify({
      reason: "Top-up",
      modifications: [{ type: "monetary", changeAmount: { currencyCode: "GBP", value: 2_500 } }],
    }),
  }
  const modified = await call(`${holder}/_modify`, modify)
  const retried = await call(`${holder}/_modify`, modify)
  const read = await call(holder, { headers })
  const limits = await call(`${base}/billing/bcws/webresources/v1.0/billunits/balancegroups/creditlimit/bg-1001`, {
    headers,
  })
  const status = await fetch(`${base}/status`)
  console.log(
    JSON.stringify({
      express: Number(expressVersion.split(".")[0]),
      refused,
      opened: { status: opened.status, balanceGroupId: opened.body.data.balanceGroupId },
      locked: { status: locked.status, keyType: typeof locked.body.data.lock.key },
      modified: { status: modified.status, credit: modified.body.data.current.credit.map((c) => c.amount) },
      replayed: retried.status === 200 && retried.body.meta.entryId === modified.body.meta.entryId,
      read: { status: read.status, credit: read.body.data.current.credit.map((c) => c.amount) },
      byBalanceGroup: { status: limits.status, holder: limits.body.data.holder },
      app: { status: status.status, text: await status.text() },
    }),
  )
} finally {
  server.close()
  await credit.close()
}
