/**
 * Verifying an observed run (observed-events.ts): what its log lets us check, said exactly, and
 * what it does not let us check, said plainly. One pass, constant-size state.
 *
 * MLLOG (MLPerf result logs):
 *   order        exactly one run_start, before any block, epoch, eval or statistic; at most one
 *                run_stop, after it (lines after run_stop are a note: real logs have them)
 *   intervals    block / epoch / eval starts and stops: balanced, or how unbalanced (stops without
 *                a start, starts while one is open, starts never closed): a note, never a failure,
 *                since real result logs are not always balanced
 *   time         time_ms never goes back (a note when it does: offline evaluations are logged late)
 *   progress     the epoch / samples / step counters of block and epoch starts never go back (a
 *                failure); evaluations reported out of order are a note
 * mmengine / detectron2 (windows of iterations):
 *   iterations   each train row's last iteration follows the previous one by the logging interval;
 *                a longer jump is a gap (iterations with no row, a failure); a shorter one is the
 *                end of an epoch or of the run, or a note
 *   lr           with a spec: the logged group's lr at each row's last iteration against the
 *                spec's warm-up (shape, start factor, length) and decay (milestones), within 0.5%
 *   modality     with a spec, and only when the log has a per-iteration modality field: each
 *                iteration's modality against the spec's pattern
 * Never checkable from these logs: per-step modality (unless logged), the lr of the other
 * groups, update steps, gradient accumulation.
 */
import { plural } from "../common/index.ts"
import type { ScheduleSpec } from "../schedule/index.ts"
import { expectedModality, expectedScheduleFactor, groupBaseLrs, totalSteps } from "../schedule/index.ts"
import type { RunEvent, RunStarted } from "./events.ts"
import type { ObservedAt, ObservedDescriptor } from "./observed-events.ts"

export type ObservedRuleName =
  | "event-log"
  | "observed-order"
  | "observed-intervals"
  | "observed-time"
  | "observed-progress"
  | "observed-iterations"
  | "observed-lr"
  | "observed-modality"

export type CheckStatus = "ok" | "note" | "fail" | "skipped"

export interface ObservedCheck {
  readonly rule: ObservedRuleName
  readonly status: CheckStatus
  /** What was checked and what was found, in one line. */
  readonly summary: string
  /** Notes and details (counts, first lines). */
  readonly details: ReadonlyArray<string>
}

export interface ObservedViolation {
  readonly rule: ObservedRuleName
  /** Line in the source file. */
  readonly line: number
  /** 0-based iteration, when the record has one. */
  readonly iteration?: number | undefined
  readonly message: string
}

export interface ObservedVerifyReport {
  readonly kind: "observed"
  readonly ok: boolean
  readonly runId: string
  readonly format: ObservedDescriptor["format"]
  readonly source: string
  readonly file: string
  readonly fileSha256: string
  readonly checks: ReadonlyArray<ObservedCheck>
  /** The first violations of each failing rule (all are counted). */
  readonly violations: ReadonlyArray<ObservedViolation>
  readonly violationCounts: Readonly<Partial<Record<ObservedRuleName, number>>>
  readonly violationTotal: number
  /** What this log does not let anyone check, in words. */
  readonly notChecked: ReadonlyArray<string>
  readonly counts: {
    readonly windows: number
    readonly evaluations: number
    readonly intervals: Readonly<Record<string, { readonly starts: number; readonly stops: number }>>
    readonly stats: number
  }
}

/** Relative tolerance of the lr check: frameworks differ by up to one iteration in where warm-up ends. */
export const OBSERVED_LR_TOLERANCE = 5e-3

/** Six significant digits; exponent notation below 1e-4 (learning rates: 5.76577e-7). */
const fmt = (x: number): string => {
  const v = Number(x.toPrecision(6))
  return v !== 0 && Math.abs(v) < 1e-4 ? v.toExponential().replace(/\.?0+e/, "e") : String(v)
}

const counterOf = (at: ObservedAt): number | undefined => at.epoch ?? at.samples ?? at.step ?? at.iteration

interface IntervalState {
  open: number
  starts: number
  stops: number
  unmatchedStops: number
  firstUnmatchedStop: number | undefined
  restarts: number
  firstRestart: number | undefined
  lastCounter: number | undefined
  lastCounterLine: number
}

const newInterval = (): IntervalState => ({
  open: 0,
  starts: 0,
  stops: 0,
  unmatchedStops: 0,
  firstUnmatchedStop: undefined,
  restarts: 0,
  firstRestart: undefined,
  lastCounter: undefined,
  lastCounterLine: 0,
})

export interface ObservedChecker {
  readonly push: (e: RunEvent) => void
  readonly finish: () => ObservedVerifyReport
}

export const makeObservedChecker = (
  started: RunStarted,
  spec: ScheduleSpec | undefined,
  opts: { readonly maxViolationsPerRule?: number } = {},
): ObservedChecker => {
  const d = started.observed
  if (d === undefined) throw new Error("makeObservedChecker: not an observed run")
  const keep = opts.maxViolationsPerRule ?? 10
  const mllog = d.format === "mllog"
  const violations: ObservedViolation[] = []
  const counts: Partial<Record<ObservedRuleName, number>> = {}
  const fail = (v: ObservedViolation): void => {
    counts[v.rule] = (counts[v.rule] ?? 0) + 1
    if (violations.filter((x) => x.rule === v.rule).length < keep) violations.push(v)
  }
  const notes: Record<string, string[]> = {}
  const note = (rule: ObservedRuleName, text: string): void => {
    notes[rule] ??= []
    if (notes[rule].length < keep) notes[rule].push(text)
  }

  // MLLOG: order, intervals, time, progress.
  const runStarts: number[] = []
  const runStops: number[] = []
  let afterStop = 0
  let firstAfterStop: number | undefined
  const intervals: Record<string, IntervalState> = {}
  let prevTime: number | undefined
  let prevTimeLine = 0
  let backwards = 0
  let firstBack: number | undefined
  let largestBack = 0
  let largestBackLine = 0
  const evalOrder: Record<string, { counter: number; line: number }> = {}
  let evalsOutOfOrder = 0
  let firstEvalOutOfOrder: number | undefined
  let windows = 0
  let evaluations = 0
  let stats = 0

  // Windows: iterations, lr, modality.
  // The logging interval (detectron2's period, mmengine's interval), not the smoothing window;
  // runs imported before it was a setting of its own kept it in window.iterations.
  const setting = d.settings.logging_period ?? d.settings.logging_interval
  const interval = typeof setting === "number" ? setting : d.window.iterations
  let prevLast: number | undefined
  let prevLine = 0
  let prevEpoch: number | undefined
  let pendingShort: { line: number; last: number; epoch: number | undefined; step: number } | undefined
  let irregular = 0
  let gaps = 0
  let firstIteration: number | undefined
  let lastIteration: number | undefined
  const total = spec ? totalSteps(spec) : 0
  const bases = spec ? groupBaseLrs(spec) : {}
  const groups = spec ? spec.optimizer.groups.map((g) => g.name) : []
  let lrGroup: string | undefined =
    d.format === "mmengine" || d.format === "mmengine-log-json" ? groups[0] : undefined
  let lrRows = 0
  let lrBeyond = false
  let modalityRows = 0
  let modalityMulti = 0

  const logged = (it: number): string =>
    d.format === "mmengine" || d.format === "mmengine-log-json"
      ? `iteration ${it} (logged step ${it + 1})`
      : `iteration ${it}`

  const checkLr = (it: number, lr: number, line: number, modality: "visual" | "text" | undefined): void => {
    if (!spec) return
    if (it >= total) {
      if (!lrBeyond)
        fail({
          rule: "observed-lr",
          line,
          iteration: it,
          message: `${logged(it)}, line ${line}: beyond the spec's ${total} steps (0..${total - 1}): the log and the scenario describe runs of different lengths`,
        })
      lrBeyond = true
      return
    }
    if (lrGroup === undefined) {
      // detectron2 logs the group with the most parameters: take the spec group that fits the first row best.
      let best = Number.POSITIVE_INFINITY
      const f = expectedScheduleFactor(spec, it, total)
      for (const g of groups) {
        const e = (bases[g] ?? 0) * f
        if (!(e > 0)) continue
        const dist = Math.abs(Math.log(lr / e))
        if (dist < best) {
          best = dist
          lrGroup = g
        }
      }
      lrGroup ??= groups[0]
    }
    const g = lrGroup!
    lrRows++
    const base = bases[g] ?? 0
    const sf = expectedScheduleFactor(spec, it, total)
    const mfs = modality
      ? [spec.lr.modalityFactor[modality]]
      : [...new Set([spec.lr.modalityFactor.visual, spec.lr.modalityFactor.text])]
    const expected = mfs.map((mf) => base * sf * mf)
    const close = (e: number) =>
      Math.abs(lr - e) <= OBSERVED_LR_TOLERANCE * Math.max(Math.abs(lr), Math.abs(e))
    if (expected.some(close)) return
    const e = expected[0]!
    const w = spec.lr.warmup
    let why = ""
    if (w && it < w.steps) {
      const f = lr / (base * (mfs[0] ?? 1))
      if (w.kind === "linear" && w.steps > 1 && it < w.steps - 1) {
        const t = it / (w.steps - 1)
        const s = (f - t) / (1 - t)
        why = `; in warm-up (iteration ${it} of ${w.steps}), the logged lr implies a linear warm-up start factor of ${fmt(s)} (the spec's is ${fmt(w.startFactor)})`
      } else
        why = `; in warm-up (iteration ${it} of ${w.steps}): x${fmt(f)} of the base lr, the spec's warm-up gives x${fmt(sf)}`
    } else {
      const dec = spec.lr.decay
      const passed = dec.kind === "multistep" ? dec.milestones.filter((m) => m <= it) : []
      why = `; x${fmt(lr / e)} of the expected${dec.kind === "multistep" ? ` (the spec's milestones ${dec.milestones.join(", ")}: ${passed.length} passed by iteration ${it})` : ""}`
    }
    fail({
      rule: "observed-lr",
      line,
      iteration: it,
      message: `${logged(it)}, line ${line}: lr ${fmt(lr)}, expected ${fmt(e)} for group "${g}" (base ${fmt(base)} x schedule ${fmt(sf)}${mfs.length === 1 && mfs[0] !== 1 ? ` x ${modality} factor ${fmt(mfs[0]!)}` : ""})${why}`,
    })
  }

  const checkModality = (it: number, m: "visual" | "text", line: number): void => {
    if (!spec || it >= total) return
    let acc = 0
    for (const p of spec.phases) {
      if (it < acc + p.steps) {
        const want = expectedModality(p, it - acc)
        if (want !== m)
          fail({
            rule: "observed-modality",
            line,
            iteration: it,
            message: `${logged(it)}, line ${line}: logged ${m}, the spec's phase "${p.name}" (${p.ratio.visual}:${p.ratio.text} ${p.order ?? "visual-first"}${p.offset ? `, offset ${p.offset}` : ""}) has ${want} at its step ${it - acc}`,
          })
        return
      }
      acc += p.steps
    }
  }

  const push = (e: RunEvent): void => {
    switch (e._tag) {
      case "ObservedInterval": {
        if (e.timeMs !== undefined) time(e.timeMs, e.line)
        if (e.kind === "run") {
          if (e.edge === "start") runStarts.push(e.line)
          else runStops.push(e.line)
          return
        }
        training(e.line, `${e.kind}_${e.edge}`)
        const s = intervals[e.kind] ?? newInterval()
        intervals[e.kind] = s
        if (e.edge === "start") {
          s.starts++
          if (s.open > 0) {
            s.restarts++
            s.firstRestart ??= e.line
          } else s.open++
          const c = counterOf(e.at)
          if (c !== undefined && e.kind !== "eval") {
            if (s.lastCounter !== undefined && c < s.lastCounter)
              fail({
                rule: "observed-progress",
                line: e.line,
                message: `line ${e.line}: ${e.kind}_start at ${fmt(c)} after one at ${fmt(s.lastCounter)} (line ${s.lastCounterLine}): training's counters went back`,
              })
            s.lastCounter = c
            s.lastCounterLine = e.line
          }
        } else {
          s.stops++
          if (s.open > 0) s.open--
          else {
            s.unmatchedStops++
            s.firstUnmatchedStop ??= e.line
          }
        }
        return
      }
      case "ObservedEval": {
        evaluations++
        if (e.timeMs !== undefined) time(e.timeMs, e.line)
        training(e.line, `eval result ${e.metric}`)
        const c = counterOf(e.at)
        if (c !== undefined) {
          const prev = evalOrder[e.metric]
          if (prev && c < prev.counter) {
            evalsOutOfOrder++
            firstEvalOutOfOrder ??= e.line
          }
          evalOrder[e.metric] = { counter: c, line: e.line }
        }
        return
      }
      case "ObservedStats":
        stats++
        if (e.timeMs !== undefined) time(e.timeMs, e.line)
        training(e.line, e.key)
        return
      case "ObservedWindow": {
        windows++
        if (e.timeMs !== undefined) time(e.timeMs, e.line)
        const it = e.last
        firstIteration ??= e.first
        lastIteration = it
        if (prevLast === undefined) {
          if (interval !== undefined && it + 1 > interval)
            note(
              "observed-iterations",
              `the log starts at ${logged(it)} (line ${e.line}): iterations before ${it + 1 - interval} have no row (a resumed run, or a log that began late)`,
            )
        } else if (it <= prevLast) {
          fail({
            rule: "observed-iterations",
            line: e.line,
            iteration: it,
            message: `${logged(it)}, line ${e.line}: after ${logged(prevLast)} (line ${prevLine}): iterations must increase (a second run appended to the file?)`,
          })
        } else if (interval !== undefined) {
          const step = it - prevLast
          if (pendingShort && (e.epoch === undefined || e.epoch === pendingShort.epoch)) {
            irregular++
            note(
              "observed-iterations",
              `line ${pendingShort.line}: ${logged(pendingShort.last)} came ${pendingShort.step} iterations after the previous row (interval ${interval}) and is not the end of an epoch`,
            )
          }
          pendingShort = undefined
          if (step > interval) {
            gaps++
            fail({
              rule: "observed-iterations",
              line: e.line,
              iteration: it,
              message: `${logged(it)}, line ${e.line}: ${step} iterations after ${logged(prevLast)} (line ${prevLine}), the logging interval is ${interval}: iterations ${prevLast + 1}..${it - interval} have no row`,
            })
          } else if (step < interval) pendingShort = { line: e.line, last: it, epoch: e.epoch, step }
        }
        if (e.epoch !== undefined && prevEpoch !== undefined && e.epoch < prevEpoch)
          fail({
            rule: "observed-iterations",
            line: e.line,
            iteration: it,
            message: `line ${e.line}: epoch ${e.epoch} after epoch ${prevEpoch}`,
          })
        if (e.epoch !== undefined) prevEpoch = e.epoch
        if (prevLast === undefined || it > prevLast) {
          prevLast = it
          prevLine = e.line
        }
        const lr = e.values.lr
        if (lr !== undefined) checkLr(it, lr, e.line, e.modality)
        if (e.modality !== undefined) {
          if (e.first === e.last) {
            modalityRows++
            checkModality(it, e.modality, e.line)
          } else modalityMulti++
        }
        return
      }
      default:
        return
    }
  }

  function time(t: number, line: number): void {
    if (prevTime !== undefined && t < prevTime) {
      backwards++
      firstBack ??= line
      if (prevTime - t > largestBack) {
        largestBack = prevTime - t
        largestBackLine = line
      }
    }
    prevTime = t
    prevTimeLine = line
  }

  function training(line: number, what: string): void {
    if (!mllog) return
    if (runStarts.length === 0)
      fail({ rule: "observed-order", line, message: `line ${line}: ${what} before run_start` })
    else if (runStops.length > 0) {
      afterStop++
      firstAfterStop ??= line
    }
  }

  const finish = (): ObservedVerifyReport => {
    const checks: ObservedCheck[] = []
    const status = (rule: ObservedRuleName): CheckStatus =>
      (counts[rule] ?? 0) > 0 ? "fail" : (notes[rule]?.length ?? 0) > 0 ? "note" : "ok"
    if (mllog) {
      if (runStarts.length === 0)
        fail({
          rule: "observed-order",
          line: 0,
          message: "the log has no run_start: not a whole run (an excerpt, or a failed start)",
        })
      if (runStarts.length > 1)
        fail({
          rule: "observed-order",
          line: runStarts[1]!,
          message: `line ${runStarts[1]}: a second run_start (the first is at line ${runStarts[0]})`,
        })
      if (runStops.length > 1)
        fail({
          rule: "observed-order",
          line: runStops[1]!,
          message: `line ${runStops[1]}: a second run_stop (the first is at line ${runStops[0]})`,
        })
      if (runStops.length > 0 && runStarts.length > 0 && runStops[0]! < runStarts[0]!)
        fail({
          rule: "observed-order",
          line: runStops[0]!,
          message: `line ${runStops[0]}: run_stop before run_start (line ${runStarts[0]})`,
        })
      if (afterStop > 0)
        note(
          "observed-order",
          `${plural(afterStop, "training line")} after run_stop (the first at line ${firstAfterStop}): the benchmark kept logging after its timed run ended`,
        )
      checks.push({
        rule: "observed-order",
        status: status("observed-order"),
        summary: `run_start ${runStarts.length === 1 ? `at line ${runStarts[0]}` : `${runStarts.length} times`}, run_stop ${runStops.length === 0 ? "absent (the log does not say how the run ended)" : runStops.length === 1 ? `at line ${runStops[0]}` : `${runStops.length} times`}; blocks, epochs, evaluations and statistics inside them`,
        details: notes["observed-order"] ?? [],
      })
      const kinds = Object.keys(intervals)
      const unbalanced: string[] = []
      for (const k of kinds) {
        const s = intervals[k]!
        const parts: string[] = []
        if (s.unmatchedStops > 0)
          parts.push(
            `${plural(s.unmatchedStops, "stop")} without a start (first at line ${s.firstUnmatchedStop})`,
          )
        if (s.restarts > 0)
          parts.push(`${plural(s.restarts, "start")} while one was open (first at line ${s.firstRestart})`)
        if (s.open > 0) parts.push(`${plural(s.open, "start")} never closed`)
        if (parts.length > 0)
          unbalanced.push(`${k}: ${s.starts} starts, ${s.stops} stops: ${parts.join("; ")}`)
      }
      for (const u of unbalanced) note("observed-intervals", u)
      checks.push({
        rule: "observed-intervals",
        status: kinds.length === 0 ? "skipped" : status("observed-intervals"),
        summary:
          kinds.length === 0
            ? "no block, epoch or eval intervals in the log"
            : `${kinds.map((k) => `${k} ${intervals[k]!.starts}/${intervals[k]!.stops}`).join(", ")} (starts/stops): ${unbalanced.length === 0 ? "balanced" : "unbalanced, tolerated (real result logs are not always balanced)"}`,
        details: notes["observed-intervals"] ?? [],
      })
      if (backwards > 0)
        note(
          "observed-time",
          `time_ms goes back ${plural(backwards, "time")} (first at line ${firstBack}; the largest step back ${fmt(largestBack / 1000)} s, at line ${largestBackLine}): lines logged late, such as offline evaluations`,
        )
      checks.push({
        rule: "observed-time",
        status: status("observed-time"),
        summary: backwards === 0 ? "time_ms never goes back" : "time_ms is not monotonic (tolerated)",
        details: notes["observed-time"] ?? [],
      })
      void prevTimeLine
      if (evalsOutOfOrder > 0)
        note(
          "observed-progress",
          `${plural(evalsOutOfOrder, "evaluation result")} reported out of order (first at line ${firstEvalOutOfOrder}): evaluated later than trained`,
        )
      checks.push({
        rule: "observed-progress",
        status: status("observed-progress"),
        summary: "the epoch / samples / step counters of block and epoch starts never go back",
        details: notes["observed-progress"] ?? [],
      })
    } else {
      if (pendingShort) pendingShort = undefined // the last row: the end of the run
      checks.push({
        rule: "observed-iterations",
        status: windows === 0 ? "skipped" : status("observed-iterations"),
        summary:
          windows === 0
            ? "no train rows"
            : `${plural(windows, "train row")}, iterations ${firstIteration}..${lastIteration} (0-based), every ${interval ?? "?"} iterations: ${gaps === 0 && (counts["observed-iterations"] ?? 0) === 0 ? "no gaps, always increasing" : `${plural(counts["observed-iterations"] ?? 0, "violation")}`}${irregular > 0 ? `; ${irregular} irregular` : ""}`,
        details: notes["observed-iterations"] ?? [],
      })
      if (!spec)
        checks.push({
          rule: "observed-lr",
          status: "skipped",
          summary: "the lr schedule: give --spec SCENARIO to check the logged lr against a warm-up and decay",
          details: [],
        })
      else {
        const w = spec.lr.warmup
        const dec = spec.lr.decay
        const sched = `${w ? `warm-up ${w.kind} from x${fmt(w.startFactor)} over ${w.steps} iterations` : "no warm-up"}, ${dec.kind === "multistep" ? `milestones ${dec.milestones.join(", ")} (gamma ${fmt(dec.gamma)})` : dec.kind === "cosine" ? `cosine to x${fmt(dec.floor)}` : "no decay"}`
        const which =
          d.format === "detectron2"
            ? `the group detectron2 logs (the one with the most parameters) fits spec group "${lrGroup ?? "?"}" best`
            : `the optimizer's first param group, spec group "${lrGroup ?? "?"}"`
        checks.push({
          rule: "observed-lr",
          status: lrRows === 0 && !lrBeyond ? "skipped" : status("observed-lr"),
          summary:
            lrRows === 0 && !lrBeyond
              ? "the rows carry no lr"
              : `lr of ${plural(lrRows, "row")} against ${spec.name}: ${sched}; ${which}; within ${OBSERVED_LR_TOLERANCE * 100}%`,
          details: [],
        })
      }
      if (d.modalityField === undefined)
        checks.push({
          rule: "observed-modality",
          status: "skipped",
          summary:
            "per-step modality: the log has no per-iteration modality field, so the visual/text pattern cannot be checked",
          details: [],
        })
      else if (!spec)
        checks.push({
          rule: "observed-modality",
          status: "skipped",
          summary: `the log's "${d.modalityField}" field: give --spec SCENARIO to check it against a schedule`,
          details: [],
        })
      else
        checks.push({
          rule: "observed-modality",
          status: modalityRows === 0 ? "skipped" : status("observed-modality"),
          summary:
            modalityRows === 0
              ? `the "${d.modalityField}" field is on rows of several iterations (${modalityMulti}): no per-iteration modality to check`
              : `modality of ${plural(modalityRows, "iteration")} against ${spec.name}'s pattern`,
          details: [],
        })
    }
    const otherGroups = spec && groups.length > 1 && !mllog
    const notChecked = d.lacks.filter((l) => !(otherGroups && l.startsWith("the lr of every param group")))
    if (otherGroups)
      notChecked.push(
        `the lr of ${plural(groups.length - 1, "other group")} of the spec (${groups.filter((g) => g !== lrGroup).join(", ")})`,
      )
    const ordered = [...violations].sort(
      (a, b) =>
        checks.findIndex((c) => c.rule === a.rule) - checks.findIndex((c) => c.rule === b.rule) ||
        a.line - b.line,
    )
    const violationTotal = Object.values(counts).reduce((a, n) => a + (n ?? 0), 0)
    const intervalCounts: Record<string, { starts: number; stops: number }> = {}
    for (const [k, s] of Object.entries(intervals)) intervalCounts[k] = { starts: s.starts, stops: s.stops }
    if (runStarts.length + runStops.length > 0)
      intervalCounts.run = { starts: runStarts.length, stops: runStops.length }
    return {
      kind: "observed",
      ok: violationTotal === 0,
      runId: started.runId,
      format: d.format,
      source: d.source,
      file: d.file,
      fileSha256: d.fileSha256,
      checks,
      violations: ordered,
      violationCounts: counts,
      violationTotal,
      notChecked,
      counts: { windows, evaluations, intervals: intervalCounts, stats },
    }
  }

  return { push, finish }
}
