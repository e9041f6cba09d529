/** The event-log rules on good and broken event sequences, given/when/then. */
import fc from "fast-check"
import { describe, expect, it } from "vitest"
import {
  checkLog,
  type LogItem,
  type LogReport,
  type LogRuleName,
  logRules,
  makeLogChecker,
} from "../../core/log/log-invariants.ts"

/** `["RunStarted", ["StepCompleted", 0], "RunCompleted"]` -> items at positions 0, 1, 2. */
const log = (...events: ReadonlyArray<string | readonly [string, number]>): LogItem[] =>
  events.map((e, position) =>
    typeof e === "string" ? { position, type: e } : { position, type: e[0], step: e[1] },
  )

const first = (report: LogReport, rule: LogRuleName) => report.violations.find((v) => v.rule === rule)

const rulesOf = (report: LogReport): LogRuleName[] => [...new Set(report.violations.map((v) => v.rule))]

describe("given a well-formed log", () => {
  it("when the run completed, then every rule holds", () => {
    const report = checkLog(
      log("RunStarted", ["StepCompleted", 0], ["StepCompleted", 1], ["StepCompleted", 2], "RunCompleted"),
    )
    expect(report).toEqual({
      ok: true,
      events: 5,
      steps: 3,
      terminal: "RunCompleted",
      violations: [],
      violationCounts: {},
    })
  })

  it("when the run failed a step and aborted, or is still running, then every rule holds", () => {
    expect(checkLog(log("RunStarted", ["StepCompleted", 0], ["StepFailed", 1], "RunAborted")).ok).toBe(true)
    const running = checkLog(log("RunStarted", ["StepCompleted", 0], "Checkpointed", ["StepCompleted", 1]))
    expect(running).toMatchObject({ ok: true, terminal: undefined, steps: 2 })
  })

  it("when it resumes after a gap in steps (a resumed or forked run), then steps need only increase", () => {
    expect(checkLog(log("RunStarted", ["StepCompleted", 5], ["StepCompleted", 9])).ok).toBe(true)
  })
})

describe("given a broken log", () => {
  it("when a position is missing, then log-positions names it", () => {
    const items = log("RunStarted", ["StepCompleted", 0], ["StepCompleted", 1]).map((e, i) =>
      i === 2 ? { ...e, position: 3 } : e,
    )
    const report = checkLog(items)
    expect(rulesOf(report)).toEqual(["log-positions"])
    expect(first(report, "log-positions")).toEqual({
      rule: "log-positions",
      position: 2,
      message:
        "position 2: missing (the next event, StepCompleted, has position 3); positions must be contiguous from 0",
    })
  })

  it("when positions do not start at 0 or go backwards, then log-positions", () => {
    expect(first(checkLog([{ position: 1, type: "RunStarted" }]), "log-positions")?.position).toBe(0)
    const back = checkLog([
      { position: 0, type: "RunStarted" },
      { position: 1, type: "StepCompleted", step: 0 },
      { position: 1, type: "StepCompleted", step: 1 },
    ])
    expect(first(back, "log-positions")?.message).toContain("position 1: StepCompleted out of order")
  })

  it("when the first event is not RunStarted, or there are two, then log-run-started", () => {
    const late = checkLog(log(["StepCompleted", 0], "RunStarted"))
    expect(late.violations.filter((v) => v.rule === "log-run-started").map((v) => v.message)).toEqual([
      "position 0: the log starts with StepCompleted, expected RunStarted",
      "position 1: RunStarted is not the first event",
    ])
    const twice = checkLog(log("RunStarted", ["StepCompleted", 0], "RunStarted"))
    expect(first(twice, "log-run-started")?.message).toBe(
      "position 2: a second RunStarted (the first is at position 0)",
    )
  })

  it("when the log is empty, then log-run-started at position 0", () => {
    expect(checkLog([]).violations).toEqual([
      {
        rule: "log-run-started",
        position: 0,
        message: "the log is empty: expected RunStarted at position 0",
      },
    ])
  })

  it("when an event follows the terminal event, or there are two terminals, then log-terminal", () => {
    const after = checkLog(log("RunStarted", ["StepCompleted", 0], "RunCompleted", ["StepCompleted", 1]))
    expect(rulesOf(after)).toEqual(["log-terminal"])
    expect(first(after, "log-terminal")?.message).toBe(
      "position 3: StepCompleted after the terminal RunCompleted at position 2",
    )
    const two = checkLog(log("RunStarted", "RunAborted", "RunCompleted"))
    expect(first(two, "log-terminal")).toMatchObject({ position: 2 })
    expect(first(two, "log-terminal")?.message).toContain("a second terminal event")
    expect(two.terminal).toBe("RunAborted")
  })

  it("when step indices repeat, go backwards or are missing, then log-step-order", () => {
    const repeat = checkLog(log("RunStarted", ["StepCompleted", 0], ["StepFailed", 0]))
    expect(first(repeat, "log-step-order")?.message).toBe(
      "position 2: StepFailed for step 0 after step 0 (position 1); step indices must be strictly increasing",
    )
    const back = checkLog(log("RunStarted", ["StepCompleted", 4], ["StepCompleted", 2]))
    expect(first(back, "log-step-order")?.position).toBe(2)
    const none = checkLog(log("RunStarted", "StepCompleted"))
    expect(first(none, "log-step-order")?.message).toContain("without a valid step index")
  })

  it("keeps the first violations per rule and counts all of them", () => {
    const c = makeLogChecker({ maxViolationsPerRule: 2 })
    c.push({ position: 0, type: "RunStarted" })
    for (let i = 1; i <= 6; i++) c.push({ position: i, type: "StepCompleted", step: 0 })
    const report = c.finish()
    expect(report.violationCounts).toEqual({ "log-step-order": 5 })
    expect(report.violations.map((v) => v.position)).toEqual([2, 3])
  })
})

describe("property: every single fault in a well-formed log is caught", () => {
  type Fault = "drop" | "swap" | "dup-start" | "after-terminal" | "repeat-step"
  it("for arbitrary lengths and fault places", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 30 }),
        fc.constantFrom<Fault>("drop", "swap", "dup-start", "after-terminal", "repeat-step"),
        fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
        (n, fault, at) => {
          const good = log(
            "RunStarted",
            ...Array.from({ length: n }, (_, i) => ["StepCompleted", i] as const),
            "RunCompleted",
          )
          expect(checkLog(good).ok).toBe(true)
          const k = 1 + Math.floor(at * n) // a step event
          const bad: LogItem[] =
            fault === "drop"
              ? good.filter((_, i) => i !== k)
              : fault === "swap"
                ? good.map((e, i) => (i === k ? { ...e, type: "RunStarted" } : e))
                : fault === "dup-start"
                  ? [good[0]!, ...good].map((e, position) => ({ ...e, position }))
                  : fault === "after-terminal"
                    ? [...good, { position: good.length, type: "StepCompleted", step: n }]
                    : good.map((e, i) => (i === k ? { ...e, step: k - 2 } : e))
          const expected: LogRuleName =
            fault === "drop"
              ? "log-positions"
              : fault === "swap" || fault === "dup-start"
                ? "log-run-started"
                : fault === "after-terminal"
                  ? "log-terminal"
                  : "log-step-order"
          const report = checkLog(bad)
          expect(report.ok).toBe(false)
          expect(rulesOf(report)).toContain(expected)
        },
      ),
      { numRuns: 200 },
    )
  })

  it("names every rule once", () => {
    expect(logRules.map((r) => r.name)).toEqual([
      "log-positions",
      "log-run-started",
      "log-terminal",
      "log-step-order",
    ])
  })
})
