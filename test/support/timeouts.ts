/**
 * Test timeouts sized from the work a test does (not a test itself). A timeout is there to end a
 * test that hangs, never to judge speed: each process a test starts and each step it runs gets an
 * allowance of some 15 to 30 times what it takes on a quiet 2-core machine, so that a loaded one
 * (load averages of 15 to 27 were measured) makes the test slow rather than failing. Latency
 * bounds belong in benchmarks.
 *
 * Quiet 2-core figures they are sized from: a start of the binary (node, effect, the CLI) under
 * a second; a Python trainer that imports torch about 2 s; a step of the PyTorch reference
 * trainer (tiny preset, batches of 2 to 8) 30 to 60 ms; a step of a small Python trainer without
 * torch a few ms; a sim step, or one step's events read, exported, verified or resumed, under
 * 0.05 ms.
 */

/** One start of the binary (or of any node process that loads the CLI). */
export const START_MS = 15_000
/** One start of a Python trainer, torch imported. */
export const TRAINER_START_MS = 30_000
/** One step of the PyTorch reference trainer, through the binary. */
export const TORCH_STEP_MS = 1_000
/** One step of a small Python trainer without torch (the SDK's test trainers). */
export const PY_STEP_MS = 100
/** One sim step, or one step's events on one pass (export, verify, resume, import, read). */
export const SIM_STEP_MS = 1
/** What the rest gets: work not counted in starts and steps, by its quiet 2-core time, times this. */
export const QUIET_FACTOR = 20

export interface Work {
  /** Starts of the binary (or of node processes that load the CLI). */
  readonly starts?: number
  /** Starts of a Python trainer that imports torch. */
  readonly trainers?: number
  /** PyTorch reference trainer steps. */
  readonly torchSteps?: number
  /** Steps of a small Python trainer without torch. */
  readonly pySteps?: number
  /** Sim steps plus step-passes over recorded events (a 30,000-step log exported once: 30,000). */
  readonly simSteps?: number
  /** Work not counted above, by what it takes on a quiet 2-core machine (ms): QUIET_FACTOR times that. */
  readonly quietMs?: number
  /** Anything else, already sized, in ms (a wait the test itself imposes). */
  readonly ms?: number
}

/** A timeout for a test doing `work`, in ms; never under the default in vitest.config.ts (180 s). */
export const timeoutFor = (work: Work): number =>
  Math.max(
    180_000,
    (work.starts ?? 0) * START_MS +
      (work.trainers ?? 0) * TRAINER_START_MS +
      (work.torchSteps ?? 0) * TORCH_STEP_MS +
      (work.pySteps ?? 0) * PY_STEP_MS +
      (work.simSteps ?? 0) * SIM_STEP_MS +
      (work.quietMs ?? 0) * QUIET_FACTOR +
      (work.ms ?? 0),
  )

/**
 * Polls `check` every `everyMs` until it returns a value other than undefined, and returns that.
 * No deadline of its own: the test's timeout, sized from its work, is the one bound. `stopped`
 * says why waiting is pointless (the process it waits on has exited, say); then it throws
 * `what`, with that reason.
 */
export const waitUntil = async <A>(
  what: string,
  check: () => A | undefined | Promise<A | undefined>,
  opts: { stopped?: () => string | undefined; everyMs?: number } = {},
): Promise<A> => {
  for (;;) {
    const a = await check()
    if (a !== undefined) return a
    const why = opts.stopped?.()
    // One more look: what it waited for may have come just before the stop.
    if (why !== undefined) {
      const last = await check()
      if (last !== undefined) return last
      throw new Error(`${what}: ${why}`)
    }
    await new Promise((r) => setTimeout(r, opts.everyMs ?? 50))
  }
}
