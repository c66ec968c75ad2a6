// ESM entry point: the same classes as the CommonJS one (one module instance, not two).
import cjs from './index.js'

export const EventSource = cjs.EventSource
export const ErrorEvent = cjs.ErrorEvent
export const EventSourceError = cjs.EventSourceError
export const version = cjs.version
export default cjs.EventSource
