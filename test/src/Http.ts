/**
 * Helpers for tests of the HTTP API (`@creditlock/http`, the `creditlock` server, or the API
 * mounted in a service): one request that never hangs, and credential headers.
 *
 * @module
 */

/** What {@link request} answers: status, headers, the body as text and, when it is JSON, parsed. */
export interface HttpAnswer {
  readonly status: number
  readonly headers: Headers
  readonly text: string
  readonly json: unknown
}

/** A request to `base` + `path` with optional headers and body; gives up after 10 seconds. */
export const request = async (
  base: string,
  method: string,
  path: string,
  init: { readonly headers?: Record<string, string>; readonly body?: string | Uint8Array } = {},
): Promise<HttpAnswer> => {
  const response = await fetch(`${base}${path}`, {
    method,
    ...(init.headers === undefined ? {} : { headers: init.headers }),
    ...(init.body === undefined ? {} : { body: init.body }),
    signal: AbortSignal.timeout(10_000),
  })
  const text = await response.text()
  let json: unknown
  try {
    json = JSON.parse(text)
  } catch {
    json = undefined
  }
  return { status: response.status, headers: response.headers, text, json }
}

/** `Authorization: Bearer` for a credential. */
export const bearer = (credential: { readonly token: string }): Record<string, string> => ({
  authorization: `Bearer ${credential.token}`,
})
