// ESM entry point: the same classes as the CommonJS one (one module instance, not two).
// Loaded with require(), not `import`: importing CommonJS makes Node lex its source for named
// exports, and on this file that lexer's optimizing compile cost ~150 ms of CPU per process.
import { createRequire } from 'node:module'

const cjs = createRequire(import.meta.url)('./index.js')

export const EventSource = cjs.EventSource
export const ErrorEvent = cjs.ErrorEvent
export const EventSourceError = cjs.EventSourceError
export const version = cjs.version
export default cjs.EventSource
