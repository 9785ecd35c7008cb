// Sends the calls of a scenario (JSON on stdin) with the official @segment/analytics-node
// SDK and flushes them; exits 1 if the SDK reported a delivery error.
// Usage: node send.mjs <host> <path> <writeKey> < scenario.json
// A scenario is a list of steps: {"call": "track" | "identify" | "page" | "screen" | "group" | "alias", "params": {...}}
// or {"call": "flush"} (waits until what was queued has been delivered).
import { Analytics } from '@segment/analytics-node'

const [host, path, writeKey] = process.argv.slice(2)
const chunks = []
for await (const chunk of process.stdin) chunks.push(chunk)
const steps = JSON.parse(Buffer.concat(chunks).toString('utf8'))

const errors = []
const responses = []
const analytics = new Analytics({ writeKey, host, path, maxRetries: 0 })
analytics.on('error', (error) => errors.push(String(error.reason ?? error.code ?? error)))
analytics.on('http_response', (response) => responses.push(response.status))

for (const step of steps) {
  if (step.call === 'flush') {
    await analytics.flush()
  } else {
    analytics[step.call](step.params)
  }
}
await analytics.closeAndFlush()
console.log(JSON.stringify({ errors, responses }))
process.exit(errors.length ? 1 : 0)
