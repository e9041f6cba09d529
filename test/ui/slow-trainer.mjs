#!/usr/bin/env node
// A trainer for the UI tests that speaks interleave's step protocol (docs/step-protocol.md) and
// takes its time: each step waits STEP_MS (argv[2], default 20) so a run lasts long enough to be
// watched live. Losses per term (total, cls, box, align) fall with the step; memory swings between
// visual (heavier) and text steps; NAN_AT (argv[3]) fails that step with nan-loss.
import { createInterface } from "node:readline"

const stepMs = Number(process.argv[2] ?? 20)
const nanAt = process.argv[3] === undefined ? -1 : Number(process.argv[3])
const MiB = 1024 * 1024
const out = (o) => process.stdout.write(`${JSON.stringify(o)}\n`)
const sleep = (ms) => new Promise((r) => setTimeout(r, ms))

const rl = createInterface({ input: process.stdin })
let queue = Promise.resolve()
rl.on("line", (text) => {
  if (text.trim() === "") return
  const req = JSON.parse(text)
  queue = queue.then(() => handle(req))
})
rl.on("close", () => queue.then(() => process.exit(0)))

const handle = async (req) => {
  switch (req.type) {
    case "hello":
      return out({
        type: "ready",
        id: req.id,
        protocol: 1,
        trainer: { name: "slow-trainer", version: "1" },
        device: "cpu (test)",
        framework: "node",
        stateless: true,
        capabilities: { evaluate: true, checkpoint: false },
      })
    case "step": {
      const p = req.plan
      await sleep(stepMs)
      if (p.step === nanAt)
        return out({ type: "failure", id: req.id, kind: "nan-loss", message: "loss is NaN" })
      const v = p.modality === "visual"
      const decay = 1 / (1 + p.step / 50)
      const cls = (v ? 1.2 : 1.6) * decay + 0.1
      const box = (v ? 0.8 : 0.5) * decay + 0.05
      const align = 0.3 * decay + (p.step % 17 === 0 ? 0.2 : 0)
      return out({
        type: "outcome",
        id: req.id,
        step: p.step,
        losses: { cls, box, align, total: cls + box + align },
        durationMs: stepMs + (v ? 4 : 1),
        samples: 4,
        memory: {
          allocatedBytes: (v ? 900 : 420) * MiB + p.step * 1024,
          peakBytes: (v ? 1500 : 700) * MiB,
          rssBytes: 300 * MiB,
        },
      })
    }
    case "evaluate":
      return out({
        type: "evaluation",
        id: req.id,
        metric: "accuracy",
        values: { visual: 0.6, text: 0.7 },
        chance: 0.25,
      })
    case "close":
      out({ type: "closed", id: req.id })
      return process.exit(0)
    default:
      return out({ type: "failure", id: req.id, kind: "trainer-error", message: `cannot ${req.type}` })
  }
}
