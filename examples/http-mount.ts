/**
 * Mounting the creditlock HTTP API inside an existing `node:http` server, next to the host's own
 * routes: the host answers its paths and hands every other request to creditlock.
 * Run with `pnpm exec tsx examples/http-mount.ts`.
 */
import { createServer } from "node:http"
import type { AddressInfo } from "node:net"
import { Server } from "@creditlock/http"
import { MemoryStorage } from "@creditlock/memory"
import { Redacted } from "effect"

const token = "example-admin-token"

const main = async () => {
  const creditlock = await Server.toNodeHandler({
    storage: MemoryStorage.layer(),
    // Tokens are held as Redacted values, so they never show up in logs.
    credentials: [{ token: Redacted.make(token), customers: ["*"] }],
    logRequests: false,
  })

  // The host's own server and routes; anything else goes to creditlock.
  const server = createServer((req, res) => {
    if (req.url === "/") {
      res.writeHead(200, { "content-type": "text/plain" }).end("host home page")
      return
    }
    if (req.url === "/status") {
      res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ host: "up" }))
      return
    }
    creditlock.handler(req, res)
  })
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  const auth = { authorization: `Bearer ${token}`, "content-type": "application/json" }

  try {
    console.log(`host route: ${await (await fetch(`${base}/`)).text()}`)
    console.log(`host status: ${await (await fetch(`${base}/status`)).text()}`)
    console.log(`creditlock health: ${await (await fetch(`${base}/healthz`)).text()}`)

    const holder = `${base}/credit/v1/customers/cus_7/contracts/sub_7`
    const opened = await fetch(holder, { method: "PUT", headers: auth })
    console.log(`open holder: ${opened.status}`)
    const locked = await fetch(`${holder}/_lock`, { method: "PUT", headers: auth })
    const { data } = (await locked.json()) as { data: { lock: { key: string } } }
    const modified = await fetch(`${holder}/_modify`, {
      method: "PUT",
      headers: { ...auth, "x-lock-key": data.lock.key },
      body: JSON.stringify({
        reason: "Welcome credit",
        modifications: [{ type: "monetary", changeAmount: { currencyCode: "GBP", value: 1000 } }],
      }),
    })
    console.log(`modify: ${modified.status}`)
    await fetch(`${holder}/_unlock`, { method: "PUT", headers: auth, body: JSON.stringify({ key: data.lock.key }) })
    const credit = (await (await fetch(holder, { headers: auth })).json()) as {
      data: { current: { credit: Array<{ amount: { currencyCode: string; value: number } }> } }
    }
    for (const c of credit.data.current.credit) console.log(`credit: ${c.amount.value} ${c.amount.currencyCode}`)

    const missing = await fetch(`${base}/not-a-route`)
    console.log(`unknown route: ${missing.status} ${JSON.stringify(await missing.json())}`)
  } finally {
    await new Promise<void>((resolve) => server.close(() => resolve()))
    await creditlock.dispose()
  }
}

await main()
