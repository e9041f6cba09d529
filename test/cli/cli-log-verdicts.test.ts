/**
 * `verify --log FILE` and `import FILE` read a log of ours through one reader and one set of
 * rules, so they agree on every log: one table, each case a log text and the verdict both give
 * (pass: verify 0 / import 0; a rule: verify 1 naming it / import 2 naming it, the same first
 * violation; bad input: both 2 with the same one line).
 */
import { readFileSync, rmSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { tempDir, writeJson } from "../support/cli-helpers.ts"
import { cliInProcess as cli } from "../support/cli-inprocess.ts"

type Line = {
  type: string
  version: number
  position?: number
  recordedAt: number
  data: Record<string, unknown>
}

type Verdict = { readonly pass: true } | { readonly rule: string } | { readonly badInput: RegExp }

interface Case {
  readonly name: string
  /** The log's text, from the lines of a completed 9-step run (RunStarted, PhaseStarted, 9 steps, RunCompleted). */
  readonly text: (lines: ReadonlyArray<Line>) => string
  readonly verdict: Verdict
}

const jsonl = (lines: ReadonlyArray<Line>) => `${lines.map((l) => JSON.stringify(l)).join("\n")}\n`
const at = (lines: ReadonlyArray<Line>, i: number, f: (l: Line) => Line) =>
  lines.map((l, j) => (j === i ? f(l) : l))
const withData = (l: Line, d: Record<string, unknown>): Line => ({ ...l, data: { ...l.data, ...d } })

const CASES: ReadonlyArray<Case> = [
  { name: "the log as exported", text: jsonl, verdict: { pass: true } },
  {
    name: "blank lines between events",
    text: (ls) => jsonl(ls).replaceAll("\n", "\n\n"),
    verdict: { pass: true },
  },
  {
    name: "no positions written (each line counts as the next)",
    text: (ls) => jsonl(ls.map(({ position: _p, ...l }) => l)),
    verdict: { pass: true },
  },
  {
    name: "positions jump from 5 to 99",
    text: (ls) =>
      jsonl(
        ls.map((l) => (l.position !== undefined && l.position > 5 ? { ...l, position: l.position + 93 } : l)),
      ),
    verdict: { rule: "log-positions" },
  },
  {
    name: "a line cut out (its position missing)",
    text: (ls) => jsonl(ls.filter((_, i) => i !== 4)),
    verdict: { rule: "log-positions" },
  },
  {
    name: "two lines swapped",
    text: (ls) => jsonl([...ls.slice(0, 3), ls[4] as Line, ls[3] as Line, ...ls.slice(5)]),
    verdict: { rule: "log-positions" },
  },
  {
    name: "a line written twice",
    text: (ls) => jsonl([...ls.slice(0, 4), ls[3] as Line, ...ls.slice(4)]),
    verdict: { rule: "log-positions" },
  },
  {
    name: "a second RunStarted",
    text: (ls) =>
      jsonl([
        ...ls.slice(0, 11),
        { ...(ls[0] as Line), position: 11 },
        { ...(ls[11] as Line), position: 12 },
      ]),
    verdict: { rule: "log-run-started" },
  },
  {
    name: "an event after RunCompleted",
    text: (ls) => jsonl([...ls, { ...(ls[1] as Line), position: 12 }]),
    verdict: { rule: "log-terminal" },
  },
  {
    name: "two terminal events",
    text: (ls) => jsonl([...ls, { ...(ls[11] as Line), position: 12 }]),
    verdict: { rule: "log-terminal" },
  },
  {
    name: "a step index going back",
    text: (ls) => jsonl(at(ls, 4, (l) => withData(l, { step: 0 }))),
    verdict: { rule: "log-step-order" },
  },
  {
    name: "a step of the wrong modality",
    text: (ls) => jsonl(at(ls, 3, (l) => withData(l, { modality: "text" }))),
    verdict: { rule: "modality-pattern" },
  },
  {
    name: "a learning rate the spec does not give",
    text: (ls) => jsonl(at(ls, 5, (l) => withData(l, { lr: { all: 0.5 } }))),
    // lr-matches-spec fails too: import names the first rule of the earliest step.
    verdict: { rule: "lr-decay" },
  },
  {
    name: "a negative durationMs",
    text: (ls) => jsonl(at(ls, 2, (l) => withData(l, { durationMs: -5 }))),
    verdict: { badInput: /:3: StepCompleted\.durationMs: expected a duration in ms \(>= 0\), got -5/ },
  },
  {
    name: "a bare NaN durationMs",
    text: (ls) => jsonl(ls).replace(/"durationMs":[0-9.e+-]+/, '"durationMs":NaN'),
    verdict: { badInput: /:3: field "data\.durationMs": NaN is not a number JSON can hold/ },
  },
  {
    name: "a bare -Infinity loss",
    text: (ls) => jsonl(ls).replace(/"total":[0-9.e+-]+/, '"total":-Infinity'),
    verdict: { badInput: /:3: field "data\.losses\.total": -Infinity is not a number JSON can hold/ },
  },
  {
    name: "a truncated last line",
    text: (ls) => jsonl(ls).slice(0, -40),
    verdict: { badInput: /:12: not valid JSON/ },
  },
  {
    name: "a step before RunStarted",
    text: (ls) => jsonl([ls[2] as Line, ...ls]),
    verdict: { badInput: /comes before RunStarted/ },
  },
]

let dir: string
let lines: Line[]

beforeAll(async () => {
  dir = tempDir("interleave-verdicts-")
  const spec = writeJson(dir, "small.json", {
    name: "small",
    seed: 1,
    phases: [{ name: "joint", steps: 9, ratio: { visual: 8, text: 1 } }],
    batch: { visual: { size: 2 }, text: { size: 2 } },
    optimizer: { kind: "adamw", lr: 1e-4, groups: [{ name: "all" }] },
  })
  const store = join(dir, "made.db")
  for (const args of [
    ["run", spec, "--run-id", "r1", "--store", store],
    ["export", "r1", "--store", store, "--out", join(dir, "r1.jsonl")],
  ]) {
    const r = await cli(args)
    if (r.code !== 0) throw new Error(`${args.join(" ")}: ${r.stderr}`)
  }
  lines = readFileSync(join(dir, "r1.jsonl"), "utf8")
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l) as Line)
  expect(lines.map((l) => l.type)).toEqual([
    "RunStarted",
    "PhaseStarted",
    ...Array(9).fill("StepCompleted"),
    "RunCompleted",
  ])
})

afterAll(() => rmSync(dir, { recursive: true, force: true }))

describe("verify --log FILE and import FILE agree", () => {
  it.each(CASES.map((c, i) => [c.name, c, i] as const))("%s", async (_name, c, i) => {
    const file = join(dir, `case-${i}.jsonl`)
    writeFileSync(file, c.text(lines))
    const store = join(dir, `case-${i}.db`)
    const v = await cli(["verify", "--log", file])
    const imp = await cli(["import", file, "--store", store])
    for (const r of [v, imp]) expect(r.stderr).not.toMatch(/\n\s+at |Error:|\[object/)
    if ("pass" in c.verdict) {
      expect(v.code, v.stderr).toBe(0)
      expect(v.stdout).toMatch(/PASS: all 15 rules hold/)
      expect(imp.code, imp.stderr).toBe(0)
      expect(imp.stdout).toContain("imported")
    } else if ("rule" in c.verdict) {
      expect(v.code, v.stdout + v.stderr).toBe(1)
      expect(v.stdout).toContain(`[${c.verdict.rule}]`)
      expect(imp.code, imp.stdout).toBe(2)
      const named = /not a valid run log: (.*) \(rule ([a-z-]+)\); nothing was imported/.exec(imp.stderr)
      expect(named, imp.stderr).not.toBeNull()
      // The violation import names is one verify lists (the earliest event-log one first).
      expect(named?.[2]).toBe(c.verdict.rule)
      expect(v.stdout).toContain(named?.[1])
    } else {
      expect(v.code, v.stdout + v.stderr).toBe(2)
      expect(imp.code, imp.stdout).toBe(2)
      expect(v.stderr).toMatch(c.verdict.badInput)
      expect(imp.stderr).toBe(v.stderr)
      expect(v.stderr.trim().split("\n")).toHaveLength(1)
    }
  })
})

describe("verify --log says what it checked", () => {
  it("a log with no recorded step is not PASS: exit 1, 'nothing recorded' (a file, and the run once imported)", async () => {
    const file = join(dir, "zero.jsonl")
    writeFileSync(file, jsonl(lines.slice(0, 2)))
    const v = await cli(["verify", "--log", file])
    expect(v.code).toBe(1)
    expect(v.stdout).not.toContain("PASS")
    expect(v.stdout).toContain("FAIL: nothing recorded")
    const j = await cli(["verify", "--log", file, "--json"])
    expect(j.code).toBe(1)
    expect(JSON.parse(j.stdout)).toMatchObject({ ok: false, nothingRecorded: true, steps: 0 })
    // import keeps such a record (a run that did nothing is still a run); verify of it says the same.
    const store = join(dir, "zero.db")
    expect((await cli(["import", file, "--store", store])).code).toBe(0)
    const s = await cli(["verify", "--log", "r1", "--store", store])
    expect(s.code).toBe(1)
    expect(s.stdout).toContain("FAIL: nothing recorded")
    // One step is something: it passes.
    const one = join(dir, "one.jsonl")
    writeFileSync(one, jsonl(lines.slice(0, 3)))
    const o = await cli(["verify", "--log", one])
    expect(o.code, o.stdout).toBe(0)
    expect(o.stdout).toContain("PASS")
  })

  it("checked against another scenario: says so first, naming the log's scenario and the given one", async () => {
    const other = writeJson(dir, "other.json", {
      name: "other-ratio",
      seed: 1,
      phases: [{ name: "joint", steps: 9, ratio: { visual: 2, text: 1 } }],
      batch: { visual: { size: 2 }, text: { size: 2 } },
      optimizer: { kind: "adamw", lr: 1e-4, groups: [{ name: "all" }] },
    })
    const file = join(dir, "r1.jsonl")
    const v = await cli(["verify", "--log", file, "--spec", other])
    expect(v.code).toBe(1)
    const first = v.stdout.split("\n")[0] ?? ""
    expect(first).toContain('the run recorded scenario "small"')
    expect(first).toContain(`"other-ratio" from ${other}`)
    expect(v.stdout).toContain("FAIL:")
    const j = await cli(["verify", "--log", file, "--spec", other, "--json"])
    expect(JSON.parse(j.stdout).specMismatch).toMatchObject({
      recorded: { name: "small" },
      given: { name: "other-ratio" },
    })
    // Its own scenario: no such note.
    const same = await cli(["verify", "--log", file, "--spec", join(dir, "small.json")])
    expect(same.code, same.stdout).toBe(0)
    expect(same.stdout).not.toContain("recorded scenario")
  })
})
