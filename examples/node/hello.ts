// hello.ts: the smallest typed use of eventsource-native (compiled by the Node test suite with
// `tsc --noEmit`; run it with any TS runner, e.g. `node --experimental-strip-types hello.ts URL`).
import { EventSource, ErrorEvent, EventSourceError, type EventSourceInit } from 'eventsource-native'

const url = process.argv[2] ?? 'http://127.0.0.1:8080/stream?count=3'
const init: EventSourceInit = {
  retry: 1000,
  headers: { 'X-Client': 'hello.ts' },
  readTimeout: null,
  signal: AbortSignal.timeout(60_000), // closes the source after a minute
}
const es = new EventSource(url, init)

es.onopen = () => {
  const type: string | null = es.responseHeaders?.get('content-type') ?? null
  console.log(`open (readyState ${es.readyState === EventSource.OPEN ? 'OPEN' : es.readyState}, ${type})`)
}
es.onmessage = (e: MessageEvent) => {
  const data: string = e.data
  console.log(`message #${e.lastEventId}: ${data}`)
}
es.addEventListener('tick', (e) => console.log(`tick: ${e.data} from ${e.origin}`))
es.addEventListener('error', (e: ErrorEvent) => {
  const status: number | undefined = e.status
  console.log(`error (${e.kind}${status === undefined ? '' : `, HTTP ${status}`}): ${e.message}`)
  // An error about a response: its headers and the start of its body (else null).
  const body: string | null = e.body
  if (body !== null) console.log(`  the server said: ${body} (request id ${e.headers?.get('x-request-id')})`)
  if (es.readyState === es.CLOSED) console.log('closed for good')
  else es.close()
})

// The same stream as an async iterable: every message event, until the source closes; a
// failure is thrown; `break` (or return) closes the source.
export async function firstMessages(from: string, n: number): Promise<string[]> {
  const out: string[] = []
  try {
    for await (const e of new EventSource(from, { transport: 'lean' })) {
      out.push(e.data)
      if (out.length === n) break
    }
  } catch (err) {
    if (err instanceof EventSourceError) console.log(`failed (${err.kind}, ${err.status ?? 'no status'}): ${err.body ?? ''}`)
    else throw err
  }
  return out
}
