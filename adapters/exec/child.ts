/**
 * The trainer as a child process: one request at a time over its stdin, one reply line back on its
 * stdout, its stderr kept in a bounded ring buffer (and echoed with a prefix to ours), and an end
 * that always reaps it.
 *
 * The child runs in a process group of its own (`detached`), so that
 *  - a terminal's Ctrl-C reaches interleave only, which then ends the child itself (SIGTERM, then
 *    SIGKILL after a grace period) once the run has recorded what it did;
 *  - a wrapper (`sh -c ...`, `torchrun`) and everything it started are signalled together.
 * If interleave itself dies without a chance to clean up (SIGKILL), the child sees end of input
 * on stdin (the SDK's `serve()` then exits) or a broken pipe on its next reply.
 */
import { type ChildProcess, spawn } from "node:child_process"

export interface ChildSpec {
  readonly command: string
  readonly args: ReadonlyArray<string>
  readonly env?: Readonly<Record<string, string | undefined>> | undefined
  readonly cwd?: string | undefined
  /** Prefix for the child's stderr lines on our stderr; undefined keeps them in the tail only. */
  readonly echoPrefix?: string | undefined
  /** How many of the child's last stderr lines to keep for error messages (default 20). */
  readonly tailLines?: number | undefined
}

export interface ChildExit {
  readonly code: number | null
  readonly signal: NodeJS.Signals | null
}

/** What became of one request. */
export type Answer =
  | { readonly _tag: "Line"; readonly line: string }
  /** No reply: the child is gone, its stdout closed, a timeout, a stray line before the request. */
  | { readonly _tag: "Lost"; readonly reason: string }

/**
 * The longest reply line read (1 MiB): replies are short JSON lines (a `ready` with its info and
 * environment is a few kB). A longer line is refused as soon as it passes this, quoting its start,
 * rather than gathered until a step timeout runs out.
 */
export const MAX_LINE = 1024 * 1024
const MAX_TAIL_LINE = 400

const exitText = (e: ChildExit): string =>
  e.signal ? `was killed by signal ${e.signal}` : `exited with code ${e.code ?? "?"}`

export class TrainerProcess {
  readonly pid: number | undefined
  private readonly proc: ChildProcess
  private readonly tail: string[] = []
  private readonly tailMax: number
  /** The start of a line not yet ended: chunks, joined once its newline comes (linear in its size). */
  private stdoutPartial: string[] = []
  private stdoutPartialLength = 0
  /** Past MAX_LINE: the rest of that line is dropped up to its newline. */
  private skippingLine = false
  private stderrPartial = ""
  private pending: ((a: Answer) => void) | undefined
  private timer: NodeJS.Timeout | undefined
  /** A line that came while no request was pending: the next request fails with it. */
  private stray: string | undefined
  private spawnError: string | undefined
  private exitInfo: ChildExit | undefined
  private stdoutEnded = false
  private stderrEnded = false
  private readonly exited: Promise<ChildExit>
  /** Why the channel is unusable (set once, by the first loss). */
  private lostReason: string | undefined

  constructor(spec: ChildSpec) {
    this.tailMax = spec.tailLines ?? 20
    this.proc = spawn(spec.command, [...spec.args], {
      stdio: ["pipe", "pipe", "pipe"],
      detached: true,
      cwd: spec.cwd,
      env: spec.env ? { ...spec.env } : process.env,
    })
    this.pid = this.proc.pid
    let settle: (e: ChildExit) => void = () => {}
    this.exited = new Promise<ChildExit>((r) => {
      settle = r
    })
    this.proc.on("error", (e: NodeJS.ErrnoException) => {
      // ENOENT / EACCES at spawn: there is no child, and no exit event will come.
      if (this.pid === undefined || e.code === "ENOENT" || e.code === "EACCES") {
        this.spawnError = `cannot start ${JSON.stringify(spec.command)}: ${e.code === "ENOENT" ? "no such program (ENOENT)" : e.code === "EACCES" ? "permission denied (EACCES)" : e.message}`
        this.exitInfo ??= { code: null, signal: null }
        settle(this.exitInfo)
        this.lose(this.spawnError)
      }
    })
    this.proc.on("exit", (code, signal) => {
      this.exitInfo = { code, signal }
      settle(this.exitInfo)
      // Let the last lines (a reply on stdout, a traceback on stderr) arrive before saying why
      // the reply is lost.
      this.afterOutput(() => this.lose(`the trainer ${exitText(this.exitInfo!)}`))
    })
    this.proc.stdin!.on("error", () => {
      // EPIPE: the child is gone; the exit event says how.
    })
    this.proc.stdout!.setEncoding("utf8")
    this.proc.stdout!.on("data", (chunk: string) => this.onStdout(chunk))
    this.proc.stdout!.on("end", () => {
      this.stdoutEnded = true
      if (this.stdoutPartialLength > 0 && !this.skippingLine) {
        const rest = this.stdoutPartial.join("")
        this.stdoutPartial = []
        this.stdoutPartialLength = 0
        this.onLine(rest)
      }
      this.outputEnded()
      // Usually the exit follows at once and says more; give it a moment.
      setTimeout(() => {
        if (!this.exitInfo) this.lose("the trainer closed its stdout")
      }, 200).unref()
    })
    this.proc.stderr!.setEncoding("utf8")
    this.proc.stderr!.on("data", (chunk: string) => this.onStderr(chunk, spec.echoPrefix))
    this.proc.stderr!.on("end", () => {
      if (this.stderrPartial) this.keepTail(this.stderrPartial, spec.echoPrefix)
      this.stderrPartial = ""
      this.stderrEnded = true
      this.outputEnded()
    })
  }

  private readonly outputWaiters: Array<() => void> = []
  private outputEnded() {
    if (this.stdoutEnded && this.stderrEnded) for (const f of this.outputWaiters.splice(0)) f()
  }
  /** Calls `f` once both output streams have ended, or after 250 ms (a grandchild may hold them). */
  private afterOutput(f: () => void) {
    if (this.stdoutEnded && this.stderrEnded) return f()
    let done = false
    const once = () => {
      if (done) return
      done = true
      f()
    }
    this.outputWaiters.push(once)
    setTimeout(once, 250).unref()
  }

  private onStdout(chunk: string) {
    // Only the new chunk is searched for newlines: a long line costs its length once, not squared.
    let start = 0
    for (;;) {
      const nl = chunk.indexOf("\n", start)
      if (nl < 0) break
      const piece = chunk.slice(start, nl)
      start = nl + 1
      if (this.skippingLine) {
        this.skippingLine = false
        continue
      }
      const line = this.stdoutPartialLength > 0 ? this.stdoutPartial.join("") + piece : piece
      this.stdoutPartial = []
      this.stdoutPartialLength = 0
      if (line.length > MAX_LINE) this.lineTooLong(line)
      else this.onLine(line)
    }
    if (start < chunk.length && !this.skippingLine) {
      this.stdoutPartial.push(chunk.slice(start))
      this.stdoutPartialLength += chunk.length - start
      if (this.stdoutPartialLength > MAX_LINE) {
        const head = this.stdoutPartial.join("")
        this.stdoutPartial = []
        this.stdoutPartialLength = 0
        this.skippingLine = true
        this.lineTooLong(head)
      }
    }
  }

  /** A line past MAX_LINE: the channel is lost, the reason quoting the line's start. */
  private lineTooLong(head: string) {
    const start = head.slice(0, 80)
    this.lose(
      `the trainer wrote a line of more than ${MAX_LINE / (1024 * 1024)} MiB on stdout (a reply is one short JSON line), starting ${JSON.stringify(start)}${head.length > start.length ? "…" : ""}`,
    )
  }

  private onLine(raw: string) {
    const line = raw.endsWith("\r") ? raw.slice(0, -1) : raw
    const pending = this.pending
    if (pending) {
      this.clearPending()
      pending({ _tag: "Line", line })
    } else this.stray ??= line
  }

  private lastStderrAt = 0
  private onStderr(chunk: string, prefix: string | undefined) {
    this.lastStderrAt = performance.now()
    const text = this.stderrPartial + chunk
    const parts = text.split("\n")
    this.stderrPartial = parts.pop() ?? ""
    if (this.stderrPartial.length > 64 * 1024) {
      parts.push(this.stderrPartial)
      this.stderrPartial = ""
    }
    for (const p of parts) this.keepTail(p, prefix)
  }

  private keepTail(raw: string, prefix: string | undefined) {
    const line = raw.endsWith("\r") ? raw.slice(0, -1) : raw
    this.tail.push(line.length > MAX_TAIL_LINE ? `${line.slice(0, MAX_TAIL_LINE - 1)}…` : line)
    if (this.tail.length > this.tailMax) this.tail.shift()
    if (prefix !== undefined) {
      // On a terminal, clear a progress line being redrawn there first.
      const clear = process.stderr.isTTY ? "\r\x1b[2K" : ""
      process.stderr.write(`${clear}${prefix}${line}\n`)
    }
  }

  private clearPending() {
    this.pending = undefined
    if (this.timer) clearTimeout(this.timer)
    this.timer = undefined
  }

  /** Marks the channel unusable; the pending request, if any, is answered with the reason. */
  private lose(reason: string) {
    this.lostReason ??= reason
    const pending = this.pending
    if (pending) {
      this.clearPending()
      pending({ _tag: "Lost", reason })
    }
  }

  /**
   * Resolves once stderr has been quiet for `quietMs` (or ended), at most after `maxMs`: stdout and
   * stderr are separate pipes, so a traceback written before a failure reply may still be on its way.
   */
  settleStderr(quietMs = 30, maxMs = 300): Promise<void> {
    const t0 = performance.now()
    return new Promise((resolve) => {
      const check = () => {
        const now = performance.now()
        if (this.stderrEnded || now - this.lastStderrAt >= quietMs || now - t0 >= maxMs) resolve()
        else setTimeout(check, quietMs)
      }
      setTimeout(check, quietMs)
    })
  }

  /** The child's last stderr lines (at most `tailLines`), oldest first. */
  stderrTail(): ReadonlyArray<string> {
    return this.stderrPartial ? [...this.tail, this.stderrPartial].slice(-this.tailMax) : [...this.tail]
  }

  get exit(): ChildExit | undefined {
    return this.exitInfo
  }

  get busy(): boolean {
    return this.pending !== undefined
  }

  get lost(): string | undefined {
    return this.lostReason
  }

  /**
   * Writes one request line and calls `done` with the reply line or the reason there is none.
   * `timeoutMs`: no reply in time is a loss (the caller ends the child). Returns a canceller.
   */
  request(line: string, timeoutMs: number, timeoutText: string, done: (a: Answer) => void): () => void {
    if (this.pending) {
      done({ _tag: "Lost", reason: "internal: a request is already pending" })
      return () => {}
    }
    if (this.stray !== undefined) {
      const s = this.stray
      this.stray = undefined
      this.lostReason ??= `the trainer wrote on stdout while no request was pending: ${JSON.stringify(s.slice(0, 160))}`
      done({ _tag: "Lost", reason: this.lostReason })
      return () => {}
    }
    if (this.lostReason !== undefined) {
      done({ _tag: "Lost", reason: this.lostReason })
      return () => {}
    }
    this.pending = done
    this.timer = setTimeout(() => this.lose(timeoutText), timeoutMs)
    this.proc.stdin!.write(`${line}\n`)
    return () => {
      if (this.pending === done) {
        this.clearPending()
        this.lostReason ??= "the request was interrupted"
      }
    }
  }

  /** Signals the child's process group (the child alone if it has none). */
  signal(sig: NodeJS.Signals) {
    if (this.pid === undefined) return
    try {
      process.kill(-this.pid, sig)
    } catch {
      try {
        process.kill(this.pid, sig)
      } catch {
        // Already gone.
      }
    }
  }

  private waitExit(ms: number): Promise<boolean> {
    if (this.exitInfo) return Promise.resolve(true)
    return new Promise((resolve) => {
      const t = setTimeout(() => resolve(false), ms)
      void this.exited.then(() => {
        clearTimeout(t)
        resolve(true)
      })
    })
  }

  /**
   * Ends the child and waits until it is reaped. `closeLine`: a polite `close` request, sent only
   * when the channel is idle and sound; the child then has `closeMs` to exit by itself. Then
   * SIGTERM, `graceMs` later SIGKILL. Never fails.
   */
  async shutdown(opts: { closeLine?: string; closeMs: number; graceMs: number }): Promise<ChildExit> {
    if (!this.exitInfo && opts.closeLine && !this.pending && this.lostReason === undefined && !this.stray) {
      this.lostReason = "the session was closed"
      this.proc.stdin!.write(`${opts.closeLine}\n`)
      this.proc.stdin!.end()
      await this.waitExit(opts.closeMs)
    }
    this.lostReason ??= "the session was closed"
    if (!this.exitInfo) {
      this.signal("SIGTERM")
      if (!(await this.waitExit(opts.graceMs))) {
        this.signal("SIGKILL")
        await this.waitExit(10_000)
      }
    }
    // Whatever the leader left behind in its group (a wrapper's children, a `sleep` that holds its
    // stdout) goes too, however the leader ended: the group is the trainer's alone. The group
    // only: the leader's pid, reaped, may belong to another process by now.
    if (this.pid !== undefined)
      try {
        process.kill(-this.pid, "SIGKILL")
      } catch {
        // No process left in the group.
      }
    this.proc.stdin?.destroy()
    this.proc.stdout?.destroy()
    this.proc.stderr?.destroy()
    return this.exitInfo ?? { code: null, signal: null }
  }

  /** Kills the child now (a timeout, a broken channel); `shutdown` still reaps it. */
  kill() {
    if (!this.exitInfo) this.signal("SIGTERM")
  }

  get stdoutClosed(): boolean {
    return this.stdoutEnded
  }

  get startError(): string | undefined {
    return this.spawnError
  }
}
