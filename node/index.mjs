// ESM entry point: the same class as the CommonJS one (one module instance, not two).
import cjs from './index.js'

export const EventSource = cjs.EventSource
export const version = cjs.version
export default cjs.EventSource
