/**
 * The streaming bound at its stated size: `verify --log` and `import` of a ~18 MB log file (40,000
 * steps) through the real binary peak under 180 MB RSS. A reader that held the file whole would
 * pass 200 MB; a streaming one stays near 100-140 MB.
 */
import { rmSync, statSync } from "node:fs"
import { join } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { spawnCli, tempDir } from "../support/cli-helpers.ts"
import { peakRssOf } from "../support/rss.ts"
import { writeSimLog } from "../support/sim-log.ts"

const dir = tempDir()
afterAll(() => rmSync(dir, { recursive: true, force: true }))
const store = join(dir, "runs.db")
const log = join(dir, "big.jsonl")
const STEPS = 40_000
const LIMIT_MB = 180

beforeAll(async () => {
  const mb = await writeSimLog(dir, STEPS, store, log)
  expect(mb).toBeGreaterThan(14)
  expect(mb).toBeLessThan(30)
}, 300_000)

describe("a ~18 MB log file", () => {
  it(`verify --log streams it: peak RSS under ${LIMIT_MB} MB`, async () => {
    const r = await peakRssOf(spawnCli(["verify", "--log", log, "--json"]))
    expect(r.stderr).toBe("")
    expect(r.code).toBe(0)
    expect(JSON.parse(r.stdout)).toMatchObject({ ok: true, steps: STEPS })
    expect(r.peakMb).toBeGreaterThan(0)
    expect(r.peakMb).toBeLessThan(LIMIT_MB)
    console.log(
      `verify --log (${(statSync(log).size / 1e6).toFixed(0)} MB): peak RSS ${r.peakMb.toFixed(0)} MB`,
    )
  }, 300_000)

  it(`import streams it too: peak RSS under ${LIMIT_MB} MB, every event in`, async () => {
    const r = await peakRssOf(spawnCli(["import", log, "--run-id", "copy", "--store", store, "--json"]))
    expect(r.stderr).toBe("")
    expect(r.code).toBe(0)
    expect(JSON.parse(r.stdout)).toEqual({ runId: "copy", events: STEPS + 4 })
    expect(r.peakMb).toBeGreaterThan(0)
    expect(r.peakMb).toBeLessThan(LIMIT_MB)
    console.log(`import (${(statSync(log).size / 1e6).toFixed(0)} MB): peak RSS ${r.peakMb.toFixed(0)} MB`)
  }, 300_000)
})
