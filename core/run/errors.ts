/** The engine's own failures (the adapter's and the store's are defined at their seams). */
import { Data } from "effect"
import type { Difference } from "../log/index.ts"
import { type EnvironmentComparison, environmentText } from "./environment.ts"

/** A run cannot be started, resumed or forked as asked (bad input: exit 2). */
export class RunError extends Data.TaggedError("RunError")<{ readonly message: string }> {}

/** A replay that did not reproduce the log. */
export class Divergence extends Data.TaggedError("Divergence")<{
  readonly runId: string
  readonly position: number
  readonly step: number | undefined
  readonly difference: Difference
  /** The recorded environment against the replaying session's: whether it explains the divergence. */
  readonly environment?: EnvironmentComparison | undefined
}> {
  override get message(): string {
    const d = this.difference
    const at =
      this.step === undefined ? `event ${this.position}` : `step ${this.step} (event ${this.position})`
    const env = this.environment ? `; ${environmentText(this.environment)}` : ""
    return `run ${this.runId} diverges at ${at}: ${d.path}: recorded ${JSON.stringify(d.a)}, replayed ${JSON.stringify(d.b)}${env}`
  }
}
