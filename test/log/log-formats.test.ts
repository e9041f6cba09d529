/**
 * Foreign logs in (core/log/formats): MLLOG read as mlcommons' parser reads it, real MLPerf result
 * log excerpts of four benchmarks as observed runs, mmengine (scalars.json and the older
 * log.json) and detectron2 metrics.json with their window semantics, the lr check against a spec
 * with a planted warm-up fault, sniffing, and our own MLLOG export in MLPerf's shape.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join, resolve } from "node:path"
import { Chunk, Effect, Either, Stream } from "effect"
import { afterAll, describe, expect, it } from "vitest"
import {
  logEvents,
  makeMllogExporter,
  mllogJson,
  openLog,
  parseOurMllogLine,
  sniffFile,
} from "../../core/log/formats/index.ts"
import {
  decodeEvent,
  EVENT_VERSIONS,
  foldRunState,
  makeObservedChecker,
  type ObservedVerifyReport,
  type RunEvent,
  toEnvelope,
} from "../../core/log/index.ts"
import { decodeSpec, encodeSpec, loadScenario, planRange } from "../../core/schedule/index.ts"
import type { StoredEvent } from "../../core/store/index.ts"

const ROOT = resolve(import.meta.dirname, "../..")
const fixture = (name: string) => join(ROOT, "test", "fixtures", "logs", name)
const dir = mkdtempSync(join(tmpdir(), "interleave-formats-"))
afterAll(() => rmSync(dir, { recursive: true, force: true }))
const write = (name: string, text: string) => {
  const f = join(dir, name)
  writeFileSync(f, text)
  return f
}

const run = <A, E>(eff: Effect.Effect<A, E>) => Effect.runPromise(Effect.either(eff))

/** Opens a log, collects its events, and verifies it as an observed run (against `specFile`). */
const observe = async (file: string, opts: { spec?: string; segment?: number } = {}) => {
  const r = await run(
    Effect.gen(function* () {
      const log = yield* openLog(file, { segment: opts.segment })
      const events = Chunk.toArray(yield* Stream.runCollect(logEvents(log))) as RunEvent[]
      const spec = opts.spec ? yield* loadScenario(opts.spec) : undefined
      const started = events[0]
      if (started?._tag !== "RunStarted") throw new Error("no RunStarted first")
      const c = makeObservedChecker(started, spec)
      for (const e of events) c.push(e)
      return { log, events, started, report: c.finish(), state: foldRunState(events) }
    }),
  )
  if (Either.isLeft(r)) throw new Error(String((r.left as { message?: string }).message ?? r.left))
  return r.right
}

const check = (r: ObservedVerifyReport, rule: string) => r.checks.find((c) => c.rule === rule)

describe("MLLOG lines as mlcommons' parser reads them", () => {
  it("keeps the text after the last ':::MLLOG ' token, whatever stands before it", () => {
    const j =
      '{"namespace": "", "time_ms": 1, "event_type": "POINT_IN_TIME", "key": "seed", "value": 3, "metadata": {}}'
    expect(mllogJson(`0: :::MLLOG ${j}`)).toBe(j)
    expect(mllogJson(`[1,0]<stdout>::::MLLOG ${j}`)).toBe(j)
    expect(mllogJson(`I0617 06:01:23.0 mlp_log.py:55] :::MLLOG ${j}`)).toBe(j)
    // The parser's greedy `.*:::MLLOG ` keeps the last occurrence.
    expect(mllogJson(`:::MLLOG {"broken" :::MLLOG ${j}`)).toBe(j)
    expect(mllogJson(":::MLLOG{}")).toBeUndefined()
    expect(mllogJson("+ echo 'Beginning trial 1 of 1'")).toBeUndefined()
  })

  it("a malformed MLLOG line is refused with its file, line and reason", async () => {
    const f = write(
      "bad.txt",
      `shell line\n:::MLLOG {"namespace": "", "time_ms": 5, "event_type": "INTERVAL_START", "key": "run_start", "value": null, "metadata": {}}\n0: :::MLLOG {"namespace": "", "key": "run_stop", "value": null, "metadata": {}}\n`,
    )
    await expect(observe(f)).rejects.toThrow(
      `${f}:3: field "time_ms": expected the time in ms since the epoch, got undefined`,
    )
    const g = write("trunc.txt", `:::MLLOG {"namespace": "", "time_ms": 5, "key": "run_st\n`)
    await expect(observe(g)).rejects.toThrow(/trunc\.txt:1: not valid JSON .*truncated/)
  })
})

describe("real MLPerf result logs (excerpts) as observed runs", () => {
  it("unet3d (Dell, v1.0): shell lines skipped and counted, an unbalanced block interval tolerated", async () => {
    const { started, report, state } = await observe(fixture("mlperf-v1.0-dell-unet3d.txt"))
    expect(started).toMatchObject({ spec: null, steps: 0, seed: 2353178111, adapter: { kind: "observed" } })
    expect(started.observed).toMatchObject({
      format: "mllog",
      lines: { total: 87, read: 47, skipped: 40 },
      settings: {
        submission_benchmark: "unet3d",
        global_batch_size: 56,
        seed: 2353178111,
        train_samples: 168,
      },
    })
    expect(started.observed?.fileSha256).toMatch(/^[0-9a-f]{64}$/)
    expect(state.status).toBe("completed")
    expect(state.observed).toMatchObject({
      evaluations: 2,
      metrics: { eval_accuracy: { count: 2, last: 0.9093979597091675 } },
      intervals: {
        block: { starts: 4, stops: 4 },
        eval: { starts: 2, stops: 2 },
        run: { starts: 1, stops: 1 },
      },
    })
    expect(report.ok).toBe(true)
    expect(check(report, "observed-intervals")).toMatchObject({
      status: "note",
      details: ["block: 4 starts, 4 stops: 1 stop without a start (first at line 64); 1 start never closed"],
    })
    expect(check(report, "observed-order")?.details[0]).toMatch(
      /5 training lines after run_stop \(the first at line 77\)/,
    )
    expect(report.notChecked).toContain("per-step modality")
  })

  it("rgat (ASUSTeK, v5.1): rank prefixes dropped; epochs, evals at fractional epochs, run_stop status", async () => {
    const { started, report, events } = await observe(fixture("mlperf-v5.1-asustek-rgat.txt"))
    expect(started.observed).toMatchObject({
      lines: { total: 38, read: 38, skipped: 0 },
      settings: { seed: 15879 },
    })
    const evals = events.filter((e) => e._tag === "ObservedEval")
    expect(evals.map((e) => e._tag === "ObservedEval" && e.at.epoch)).toEqual([0.05, 0.1, 0.9])
    expect(events.at(-1)).toMatchObject({ _tag: "RunCompleted", completedAt: 1760004007563 })
    expect(report).toMatchObject({ ok: true, counts: { intervals: { epoch: { starts: 1, stops: 1 } } } })
    expect(report.checks.map((c) => c.status)).toEqual(["ok", "ok", "ok", "ok"])
  })

  it("llama2_70b_lora (NVIDIA, v4.0): :::SYSJSON lines skipped, evals at samples_count", async () => {
    const { started, events, report } = await observe(fixture("mlperf-v4.0-nvidia-llama2_70b_lora.txt"))
    expect(started.observed?.lines).toEqual({ total: 42, read: 40, skipped: 2 })
    expect(started.runId).toMatch(/^mlperf-llama2_70b_lora-[0-9a-f]{8}$/)
    const evals = events.flatMap((e) => (e._tag === "ObservedEval" ? [[e.at.samples, e.value]] : []))
    expect(evals).toEqual([
      [7296, 0.9387192726135254],
      [7680, 0.9379057288169861],
      [11136, 0.9244787096977234],
    ])
    expect(report.ok).toBe(true)
  })

  it("stable_diffusion (NVIDIA, v3.1): named metrics, time going back, a doubled block_start", async () => {
    const { started, report, state } = await observe(fixture("mlperf-v3.1-nvidia-stable_diffusion.txt"))
    expect(started.observed?.settings).toMatchObject({ seed: 714502991, seed_lines: 2, seed_values: 2 })
    expect(Object.keys(state.observed?.metrics ?? {}).sort()).toEqual(["CLIP", "FID"])
    expect(state.observed?.metrics.FID).toMatchObject({ count: 4, last: 77.90123748779297 })
    expect(report.ok).toBe(true)
    expect(check(report, "observed-time")).toMatchObject({ status: "note" })
    expect(check(report, "observed-time")?.details[0]).toMatch(/goes back 1 time \(first at line 44/)
    expect(check(report, "observed-intervals")?.details[0]).toMatch(
      /block: 6 starts, 4 stops: 1 start while one was open \(first at line 25\); 1 start never closed/,
    )
    expect(check(report, "observed-progress")?.details[0]).toMatch(
      /3 evaluation results reported out of order/,
    )
  })

  it("an MLLOG without run_start fails the order check, naming what came first", async () => {
    const f = write(
      "norun.txt",
      [
        ':::MLLOG {"namespace": "", "time_ms": 10, "event_type": "POINT_IN_TIME", "key": "eval_accuracy", "value": 0.5, "metadata": {"epoch_num": 1}}',
        ':::MLLOG {"namespace": "", "time_ms": 11, "event_type": "INTERVAL_END", "key": "run_stop", "value": null, "metadata": {"status": "aborted"}}',
      ].join("\n"),
    )
    const { report, state } = await observe(f)
    expect(state.status).toBe("aborted")
    expect(report.ok).toBe(false)
    expect(report.violations.map((v) => v.message)).toEqual([
      "the log has no run_start: not a whole run (an excerpt, or a failed start)",
      "line 1: eval result eval_accuracy before run_start",
    ])
  })

  it("an object-valued eval_accuracy (Mask R-CNN's BBOX / SEGM) gives one result per metric", async () => {
    const f = write(
      "maskrcnn.txt",
      [
        ':::MLLOG {"namespace": "", "time_ms": 1, "event_type": "INTERVAL_START", "key": "run_start", "value": null, "metadata": {}}',
        ':::MLLOG {"namespace": "", "time_ms": 2, "event_type": "POINT_IN_TIME", "key": "eval_accuracy", "value": {"BBOX": 0.378, "SEGM": 0.341}, "metadata": {"epoch_num": 13}}',
      ].join("\n"),
    )
    const { state } = await observe(f)
    expect(state.status).toBe("observed")
    expect(state.observed?.metrics).toMatchObject({ BBOX: { last: 0.378 }, SEGM: { last: 0.341 } })
  })
})

describe("mmengine logs", () => {
  const spec = join(ROOT, "scenarios", "petdino-swin-t.json")

  it("scalars.json: 1-based steps stored 0-based, the interval inferred, val rows as evaluations", async () => {
    const { started, events, report } = await observe(fixture("mmengine-petdino-scalars.json"), { spec })
    const d = started.observed!
    // The logging interval is inferred; the window (LogProcessor's window_size) is not recorded.
    expect(d).toMatchObject({
      format: "mmengine",
      window: { kind: "mean" },
      settings: { logging_interval: 50 },
      lines: { read: 42 },
    })
    expect(d.window.iterations).toBeUndefined()
    expect(d.fields.memory).toMatch(/max_memory_allocated since the previous row, MiB/)
    expect(d.fields.lr).toMatch(/first param group/)
    expect(d.iterations).toMatch(/runner\.iter \+ 1 \(1-based\); stored 0-based/)
    const windows = events.filter((e) => e._tag === "ObservedWindow")
    expect(windows[0]).toMatchObject({ first: 0, last: 49, epoch: 1, line: 1 })
    expect(windows[20]).toMatchObject({ first: 1000, last: 1049, epoch: 2 })
    const evals = events.filter((e) => e._tag === "ObservedEval" && e.metric === "coco/bbox_mAP")
    expect(evals.map((e) => e._tag === "ObservedEval" && [e.at.epoch, e.value])).toEqual([
      [1, 0.262],
      [2, 0.312],
    ])
    expect(report.ok).toBe(true)
    expect(check(report, "observed-lr")?.summary).toMatch(
      /lr of 40 rows against petdino-swin-t: warm-up linear from x0\.1 over 1000 iterations, milestones 8000, 11000/,
    )
    expect(check(report, "observed-modality")).toMatchObject({ status: "skipped" })
    expect(report.notChecked.join("\n")).toMatch(/per-iteration modality/)
    expect(report.notChecked.join("\n")).toMatch(
      /the lr of 3 other groups of the spec \(language-model, neck, head\)/,
    )
  })

  it("the planted warm-up fault (start factor 0.001, not 0.1) is flagged at the first logged iteration", async () => {
    const { report } = await observe(fixture("mmengine-petdino-lr-fault-scalars.json"), { spec })
    expect(report.ok).toBe(false)
    const first = report.violations[0]!
    expect(first).toMatchObject({ rule: "observed-lr", iteration: 49, line: 1 })
    expect(first.message).toBe(
      'iteration 49 (logged step 50), line 1: lr 2e-7, expected 5.76577e-7 for group "backbone" (base 4e-6 x schedule 0.144144); in warm-up (iteration 49 of 1000), the logged lr implies a linear warm-up start factor of 0.001 (the spec\'s is 0.1)',
    )
    // Every warm-up row is off; after warm-up (iteration 999 on) the lr agrees again.
    expect(report.violationCounts["observed-lr"]).toBe(19)
  })

  it("a missing row is a gap; an epoch's short last row is not", async () => {
    const row = (step: number, epoch: number) =>
      JSON.stringify({ lr: 0.01, loss: 1, time: 0.5, epoch, iter: step, memory: 100, step })
    // Epoch 1 has 120 iterations: rows at 50, 100 and the end (120); epoch 2 misses the row at 220.
    const f = write(
      "gap-scalars.json",
      [row(50, 1), row(100, 1), row(120, 1), row(170, 2), row(270, 2)].join("\n"),
    )
    const { report } = await observe(f)
    expect(report.ok).toBe(false)
    expect(report.violations.map((v) => v.message)).toEqual([
      "iteration 269 (logged step 270), line 5: 100 iterations after iteration 169 (logged step 170) (line 4), the logging interval is 50: iterations 170..219 have no row",
    ])
  })

  it("NaN losses (Python's json.dumps writes them bare) are kept as non-finite fields", async () => {
    const f = write("nan-scalars.json", '{"lr": 0.01, "loss": NaN, "loss_cls": Infinity, "step": 50}\n')
    const { events } = await observe(f)
    expect(events[1]).toMatchObject({
      _tag: "ObservedWindow",
      values: { lr: 0.01 },
      nonFinite: ["loss", "loss_cls"],
    })
  })

  it("the older *.log.json counts iter within the epoch; a val row gives the epoch length", async () => {
    const rows = [
      { env_info: "sys.platform: linux", config: "model = dict(...)", seed: 42, exp_name: "faster_rcnn" },
      { mode: "train", epoch: 1, iter: 50, lr: 0.0198, memory: 2970, data_time: 0.05, loss: 1.9, time: 0.43 },
      { mode: "train", epoch: 1, iter: 100, lr: 0.02, memory: 2970, data_time: 0.05, loss: 1.5, time: 0.43 },
      { mode: "val", epoch: 1, iter: 120, lr: 0.02, bbox_mAP: 0.213, bbox_mAP_copypaste: "0.213 0.379" },
      { mode: "train", epoch: 2, iter: 50, lr: 0.02, memory: 2970, data_time: 0.05, loss: 1.2, time: 0.43 },
    ]
    const f = write("20240101_120000.log.json", rows.map((r) => JSON.stringify(r)).join("\n"))
    const { started, events } = await observe(f)
    expect(started.observed).toMatchObject({
      format: "mmengine-log-json",
      settings: { seed: 42, iterations_per_epoch: 120 },
    })
    expect(started.seed).toBe(42)
    expect(started.runId).toMatch(/^faster_rcnn-20240101_120000-[0-9a-f]{8}$/)
    const w = events
      .filter((e) => e._tag === "ObservedWindow")
      .map((e) => e._tag === "ObservedWindow" && [e.first, e.last])
    expect(w).toEqual([
      [0, 49],
      [50, 99],
      [120, 169],
    ])
    expect(events.find((e) => e._tag === "ObservedEval")).toMatchObject({
      metric: "bbox_mAP",
      at: { epoch: 1, iteration: 119 },
    })
  })

  it("a per-iteration modality field is checked against the spec's pattern; rows of many iterations are not", async () => {
    // PET-DINO's hook: iteration i is visual iff (i + 1) % 9 < 8; the 9th row here says visual at iteration 7.
    const row = (i: number, modality: string) =>
      JSON.stringify({ lr: 4e-6 * (0.1 + (0.9 * i) / 999), loss: 1, modality, step: i + 1 })
    const good = Array.from({ length: 18 }, (_, i) => row(i, (i + 1) % 9 < 8 ? "visual" : "text"))
    const ok = await observe(write("mod-scalars.json", good.join("\n")), { spec })
    expect(ok.started.observed?.modalityField).toBe("modality")
    expect(check(ok.report, "observed-modality")).toMatchObject({
      status: "ok",
      summary: "modality of 18 iterations against petdino-swin-t's pattern",
    })
    const bad = [...good]
    bad[7] = row(7, "visual")
    const r = await observe(write("mod-bad-scalars.json", bad.join("\n")), { spec })
    expect(r.report.violations).toEqual([
      {
        rule: "observed-modality",
        line: 8,
        iteration: 7,
        message:
          'iteration 7 (logged step 8), line 8: logged visual, the spec\'s phase "joint" (8:1 visual-first, offset 1) has text at its step 7',
      },
    ])
    const coarse = [50, 100].map((s) => JSON.stringify({ lr: 1e-6, loss: 1, modality: "visual", step: s }))
    const c = await observe(write("mod-coarse-scalars.json", coarse.join("\n")), { spec })
    expect(check(c.report, "observed-modality")).toMatchObject({ status: "skipped" })
  })

  it("a row without a valid step names the line and the field", async () => {
    const f = write(
      "badstep-scalars.json",
      '{"lr": 0.01, "loss": 1, "step": 50}\n{"lr": 0.01, "loss": 1, "step": "100"}\n',
    )
    await expect(observe(f)).rejects.toThrow(
      `${f}:2: field "step": expected runner.iter + 1, an integer >= 1, got "100"`,
    )
  })
})

describe("detectron2 metrics.json", () => {
  it("runs appended to one file are refused without --segment, naming where the iteration goes back", async () => {
    await expect(observe(fixture("detectron2-two-runs-metrics.json"))).rejects.toThrow(
      /holds 2 runs appended .*goes back at line 4 \(19 after 59\), a new run from the start; 1: lines 1-3, iterations 19\.\.59; 2: lines 4-14, iterations 19\.\.199\. Pick one with --segment 1\.\.2/,
    )
    await expect(observe(fixture("detectron2-two-runs-metrics.json"), { segment: 3 })).rejects.toThrow(
      /--segment: .* holds 2 runs; expected 1\.\.2, got 3/,
    )
  })

  it("a segment: 0-based iterations, medians of 20, an evaluation row, the lr of the largest group", async () => {
    const spec = join(ROOT, "scenarios", "petdino-swin-t.json")
    const { started, events, report } = await observe(fixture("detectron2-two-runs-metrics.json"), {
      spec,
      segment: 2,
    })
    expect(started.observed).toMatchObject({
      format: "detectron2",
      window: { kind: "median", iterations: 20 },
      segment: { index: 2, of: 2, firstLine: 4, lastLine: 14 },
      settings: { logging_period: 20 },
    })
    expect(started.runId).toMatch(/-run2-[0-9a-f]{8}$/)
    const windows = events.filter((e) => e._tag === "ObservedWindow")
    expect(windows.map((w) => w._tag === "ObservedWindow" && w.last)).toEqual([
      19, 39, 59, 79, 99, 119, 139, 159, 179, 199,
    ])
    expect(windows[1]).toMatchObject({ first: 20, last: 39 })
    expect(
      events.filter((e) => e._tag === "ObservedEval").map((e) => e._tag === "ObservedEval" && e.metric),
    ).toEqual(["bbox/AP", "bbox/AP50", "bbox/AP75", "bbox/APl", "bbox/APm", "bbox/APs"])
    expect(report.ok).toBe(true)
    expect(check(report, "observed-lr")?.summary).toMatch(
      /the one with the most parameters\) fits spec group "head" best/,
    )
  })
})

describe("sniffing: which format a file is", () => {
  it("names every known kind, and what is not a log", async () => {
    const kinds = await run(
      Effect.all(
        [
          fixture("mlperf-v5.1-asustek-rgat.txt"),
          fixture("mmengine-petdino-scalars.json"),
          fixture("detectron2-two-runs-metrics.json"),
          join(ROOT, "scenarios", "petdino-swin-t.json"),
          join(ROOT, "test", "fixtures", "sweep-results.json"),
        ].map((f) => Effect.map(sniffFile(f), (s) => s.kind)),
      ),
    )
    expect(kinds).toEqual(Either.right(["mllog", "mmengine", "detectron2", "scenario", "bench-results"]))
  })

  it("the wrong --format says what the file looks like and which --format reads it", async () => {
    const scalars = fixture("mmengine-petdino-scalars.json")
    const r = await run(openLog(scalars, { format: "jsonl" }))
    expect(Either.isLeft(r) && r.left.message).toBe(
      `${scalars}: looks like an mmengine vis_data/scalars.json (rows with step, lr, losses), not interleave's JSONL; read it with --format mmengine (or without --format)`,
    )
    const mllog = fixture("mlperf-v1.0-dell-unet3d.txt")
    const m = await run(openLog(mllog, { format: "detectron2" }))
    expect(Either.isLeft(m) && m.left.message).toMatch(
      /looks like an MLPerf MLLOG log .*read it with --format mllog/,
    )
    const sc = join(ROOT, "scenarios", "petdino-swin-t.json")
    const s = await run(openLog(sc))
    expect(Either.isLeft(s) && s.left.message).toMatch(
      /looks like a scenario file .*check it with `interleave verify FILE`/,
    )
  })
})

describe("our MLLOG export in MLPerf's shape", () => {
  const spec = Either.getOrThrow(
    decodeSpec({
      name: "mini",
      phases: [
        { name: "text-only", steps: 2, ratio: { visual: 0, text: 1 } },
        { name: "joint", steps: 3, ratio: { visual: 2, text: 1 } },
      ],
      batch: { visual: { size: 4, accumulation: 2 }, text: { size: 3 } },
      optimizer: { kind: "adamw", lr: 1e-3, groups: [{ name: "head" }] },
    }),
  )
  const events: RunEvent[] = [
    {
      _tag: "RunStarted",
      runId: "mini-1",
      spec: encodeSpec(spec),
      specHash: "x",
      source: "test",
      steps: 5,
      seed: 7,
      adapter: { kind: "sim", options: {}, info: {} },
      versions: {},
      startedAt: 100,
      engine: { evalEvery: 0, checkpointEvery: 0 },
    },
  ]
  for (const p of planRange(spec)) {
    if (p.step === 0 || p.step === 2)
      events.push({ _tag: "PhaseStarted", phase: p.phase, index: p.step === 0 ? 0 : 1, step: p.step })
    events.push({
      _tag: "StepCompleted",
      ...p,
      losses: { total: 1 / (p.step + 1) },
      durationMs: 2,
      samples: p.modality === "visual" ? 4 : 3,
      memory: {},
    })
  }
  events.push({ _tag: "EvalCompleted", step: 4, metric: "accuracy", values: { visual: 0.5, text: 0.25 } })
  events.push({ _tag: "RunCompleted", steps: 5, completedAt: 200 })
  const stored: StoredEvent[] = events.map((e, i) => ({
    ...toEnvelope(e),
    stream: "mini-1",
    position: i,
    globalPosition: i,
    recordedAt: 100 + i,
  }))
  const ex = makeMllogExporter()
  const lines = stored.flatMap((e) => ex.push(e))
  const records = lines.map((l) => JSON.parse(l.slice(":::MLLOG ".length)))

  it("uses MLPerf's keys: run_start/run_stop with status, blocks per phase, eval_accuracy a number per modality", () => {
    expect(lines.every((l) => l.startsWith(':::MLLOG {"namespace":""'))).toBe(true)
    expect(records.map((r) => Object.keys(r))).toSatisfy((ks: string[][]) =>
      ks.every((k) => k.join() === "namespace,time_ms,event_type,key,value,metadata"),
    )
    expect(records.map((r) => r.key)).toEqual([
      "run_start",
      "seed",
      "global_batch_size",
      "global_batch_size",
      "block_start",
      "tracked_stats",
      "tracked_stats",
      "block_stop",
      "block_start",
      "tracked_stats",
      "tracked_stats",
      "tracked_stats",
      "eval_accuracy",
      "eval_accuracy",
      "block_stop",
      "run_stop",
    ])
    expect(records[2]).toMatchObject({ value: 8, metadata: { modality: "visual" } })
    expect(records[7]).toMatchObject({
      event_type: "INTERVAL_END",
      value: "text-only",
      metadata: { samples_count: 6 },
    })
    expect(
      records
        .filter((r) => r.key === "eval_accuracy")
        .map((r) => [r.value, r.metadata.metric, r.metadata.modality]),
    ).toEqual([
      [0.5, "accuracy", "visual"],
      [0.25, "accuracy", "text"],
    ])
    expect(records.at(-1)).toMatchObject({
      event_type: "INTERVAL_END",
      key: "run_stop",
      metadata: { status: "success" },
    })
    // Each event's envelope is on exactly one line, under the one namespaced key.
    expect(records.filter((r) => r.metadata.interleave !== undefined)).toHaveLength(events.length)
    expect(records.flatMap((r) => Object.keys(r.metadata)).filter((k) => k.includes("interleave"))).toEqual(
      events.map(() => "interleave"),
    )
  })

  it("reads back to the same events, derived lines skipped", () => {
    const back = lines.flatMap((l, i) => {
      const r = parseOurMllogLine(l, "x.mllog", i + 1)
      if (r instanceof Error) throw r
      return r ? [r.event] : []
    })
    expect(back).toEqual(events)
  })
})

describe("event versions", () => {
  it("RunStarted v4 adds adapter.environment, v3 the observed descriptor; v1 to v3 payloads upcast unchanged", () => {
    expect(EVENT_VERSIONS.RunStarted).toBe(4)
    const v2 = {
      _tag: "RunStarted",
      runId: "r",
      spec: {},
      specHash: "h",
      source: "s",
      steps: 1,
      seed: 0,
      adapter: { kind: "sim", options: {}, info: {} },
      versions: {},
      startedAt: 0,
      engine: { evalEvery: 0, checkpointEvery: 0 },
    }
    for (const version of [1, 2, 3, 4])
      expect(Either.isRight(decodeEvent({ type: "RunStarted", version, data: v2 }, "t"))).toBe(true)
    const v4 = { ...v2, adapter: { ...v2.adapter, environment: { blas: "/usr/lib/libblas.so.3" } } }
    expect(Either.isRight(decodeEvent({ type: "RunStarted", version: 4, data: v4 }, "t"))).toBe(true)
    const newer = decodeEvent({ type: "RunStarted", version: 5, data: v2 }, "t")
    expect(Either.isLeft(newer) && newer.left.reason).toMatch(/written by a newer interleave/)
    const bad = decodeEvent(
      {
        type: "ObservedWindow",
        version: 1,
        data: { _tag: "ObservedWindow", first: 0, last: 1.5, values: {}, line: 1 },
      },
      "t",
    )
    expect(Either.isLeft(bad) && bad.left.reason).toMatch(/^ObservedWindow\.last: /)
  })
})
