// One client process of bench/bench_collect.py: the official Segment Node SDK
// (@segment/analytics-node) at its default batching (15 events per request, a partial batch
// flushed after 10 s) sends the track calls of a job file to our Segment-compatible endpoint.
//
//   node bench/node/send.mjs <host> <path> <write key> <job.json> <result.json>
//
// (host http://127.0.0.1:8770, path /collect/v1/batch: the SDK resolves its path against
// the host's root, so a prefix must go in `path`)
//
// job.json: {"mode": "burst" | "paced", "window": 60, "rate": 20,
//            "events": [{"message_id", "user_id", "event", "properties"}, …]}
// burst: as fast as the server takes them, at most `window` events awaiting delivery
//        (the SDK itself sends every full batch at once, without a bound);
// paced: `rate` events per second, each one's send time (ms since the epoch) recorded.
// result.json: {"started", "finished" (ms since the epoch), "delivered", "failed", "errors", "sent_at"}
import { readFileSync, writeFileSync } from 'node:fs'
import { Analytics } from '@segment/analytics-node'

const [host, path, writeKey, jobPath, resultPath] = process.argv.slice(2)
const job = JSON.parse(readFileSync(jobPath, 'utf8'))
const analytics = new Analytics({ writeKey, host, path }) // nothing about batching is set: its defaults
const errors = []
analytics.on('error', (error) => { if (errors.length < 5) errors.push(String(error.reason ?? error.code ?? error)) })

let delivered = 0
let failed = 0
const sentAt = {}
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

function track(event, done) {
  analytics.track(
    { userId: event.user_id, event: event.event, properties: event.properties, messageId: event.message_id },
    (error) => { if (error) failed++; else delivered++; done?.() },
  )
}

const started = Date.now()
if (job.mode === 'paced') {
  for (let i = 0; i < job.events.length; i++) {
    const due = started + (i * 1000) / job.rate
    if (due > Date.now()) await sleep(due - Date.now())
    sentAt[job.events[i].message_id] = Date.now()
    track(job.events[i])
  }
} else {
  await new Promise((resolve) => {
    let next = 0
    let waiting = 0
    const pump = () => {
      while (waiting < job.window && next < job.events.length) {
        waiting++
        track(job.events[next++], () => { waiting--; pump() })
      }
      if (next >= job.events.length) resolve() // closeAndFlush sends the last partial batch
    }
    pump()
  })
}
await analytics.closeAndFlush()
const finished = Date.now()
writeFileSync(resultPath, JSON.stringify({ started, finished, delivered, failed, errors, sent_at: sentAt }))
