#!/usr/bin/env node
// tail: print the events of a server-sent-events stream, one line each (Node face).
//
//     node examples/node/tail.mjs URL [--json] [--header 'Name: value']... [--last-event-id ID]
//         [--retry MS] [--with-credentials] [--method M] [--body TEXT] [--max-events N]
//         [--events TYPE,TYPE...]
//
// The same program exists in Rust, C and Python with the same arguments and output.
// Exit status: 0 after --max-events messages, 2 when the source fails for good, 130 on Ctrl-C,
// 64 for bad arguments or an invalid URL. Needs `npm install eventsource-native` (or, in this
// repository, `make -C node build`).

const { EventSource } = await import('eventsource-native').catch(() => import('../../node/index.mjs'))

const USAGE =
  "usage: tail URL [--json] [--header 'Name: value']... [--last-event-id ID] " +
  '[--retry MS] [--with-credentials] [--method M] [--body TEXT] [--max-events N] [--events TYPE,TYPE...]'

function usage(msg) {
  if (msg) process.stderr.write(`tail: ${msg}\n`)
  process.stderr.write(`${USAGE}\n`)
  process.exit(64)
}

function parseArgs(argv) {
  const args = { url: undefined, json: false, init: {}, headers: [], maxEvents: undefined, events: ['message'] }
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]
    const value = (name) => {
      if (i + 1 >= argv.length) usage(`${name} needs a value`)
      return argv[++i]
    }
    switch (arg) {
      case '--json':
        args.json = true
        break
      case '--with-credentials':
        args.init.withCredentials = true
        break
      case '--header': {
        const h = value('--header')
        const colon = h.indexOf(':')
        if (colon < 0) usage(`--header ${JSON.stringify(h)}: expected 'Name: value'`)
        args.headers.push([h.slice(0, colon).trim(), h.slice(colon + 1).trim()])
        break
      }
      case '--last-event-id':
        args.init.lastEventId = value('--last-event-id')
        break
      case '--retry': {
        const v = value('--retry')
        if (!/^[0-9]+$/.test(v)) usage(`--retry ${JSON.stringify(v)}: expected milliseconds`)
        args.init.retry = Number(v)
        break
      }
      case '--method':
        args.init.method = value('--method')
        break
      case '--body':
        args.init.body = value('--body')
        break
      case '--max-events': {
        const v = value('--max-events')
        if (!/^[0-9]+$/.test(v)) usage(`--max-events ${JSON.stringify(v)}: expected a count`)
        args.maxEvents = Number(v)
        break
      }
      case '--events':
        args.events.push(...value('--events').split(',').filter((t) => t !== ''))
        break
      case '-h':
      case '--help':
        usage()
        break
      default:
        if (arg.startsWith('-')) usage(`unknown option ${arg}`)
        if (args.url !== undefined) usage(`unexpected argument ${JSON.stringify(arg)}`)
        args.url = arg
    }
  }
  if (args.url === undefined) usage('missing URL')
  if (args.headers.length > 0) args.init.headers = args.headers
  return args
}

// For a terminal: a backslash, LF, CR and tab as `\\`, `\n`, `\r`, `\t`, and every other control
// character (C0, DEL, C1) as `\u{HEX}`, so that a stream cannot drive the terminal.
const NAMED = { '\\': '\\\\', '\n': '\\n', '\r': '\\r', '\t': '\\t' }
const escape = (s) => s.replace(/[\\\x00-\x1f\x7f-\x9f]/g, (c) => NAMED[c] ?? `\\u{${c.charCodeAt(0).toString(16)}}`)

function format(event, readyState, json) {
  if (event.type === 'open' && !(event instanceof MessageEvent)) {
    return json ? '{"kind":"open","readyState":1}' : 'open'
  }
  if (event instanceof MessageEvent) {
    if (json) {
      return (
        `{"kind":"message","type":${JSON.stringify(event.type)},"data":${JSON.stringify(event.data)},` +
        `"lastEventId":${JSON.stringify(event.lastEventId)},"origin":${JSON.stringify(event.origin)},` +
        `"readyState":${readyState}}`
      )
    }
    const id = event.lastEventId === '' ? '' : ` #${escape(event.lastEventId)}`
    return `${escape(event.type)}${id}: ${escape(event.data)}`
  }
  // error
  const status = event.code === undefined ? null : event.code
  if (json) {
    return `{"kind":"error","readyState":${readyState},"message":${JSON.stringify(event.message ?? '')},"status":${status}}`
  }
  const http = status === null ? '' : ` (HTTP ${status})`
  return `error: ${escape(event.message ?? '')}${http}, ${readyState === EventSource.CLOSED ? 'closed' : 'reconnecting'}`
}

const args = parseArgs(process.argv.slice(2))
let es
try {
  es = new EventSource(args.url, args.init)
} catch (err) {
  process.stderr.write(`tail: ${err.message}\n`)
  process.exit(64)
}

let messages = 0
let done = false
// Exits once everything is written: the closed source no longer holds the event loop.
function finish(code) {
  done = true
  es.close()
  process.exitCode = code
}

const listened = new Set(args.events)

function onEvent(event) {
  if (done) return
  if (event instanceof MessageEvent) {
    // A message named `error` reaches the error listener, as in a browser: it is printed, and
    // counted only when its type is listened to as well (--events error). One named `open`
    // reaches the open listener too, but is printed only when listened to.
    const counted = listened.has(event.type)
    if (!counted && event.type !== 'error') return
    if (counted) messages++
  }
  const line = format(event, es.readyState, args.json)
  process.stdout.write(`${line}\n`)
  if (event.type === 'error' && !(event instanceof MessageEvent) && es.readyState === EventSource.CLOSED) {
    finish(2)
  } else if (args.maxEvents !== undefined && messages >= args.maxEvents) {
    finish(0)
  }
}

es.addEventListener('open', onEvent)
es.addEventListener('error', onEvent)
for (const type of args.events) es.addEventListener(type, onEvent)

process.stdout.on('error', (err) => {
  // stdout closed (e.g. `| head`): nothing left to do.
  if (err.code === 'EPIPE') finish(0)
})
process.on('SIGINT', () => finish(130))
