/**
 * Whether the process that writes a run is still alive. A run's log says who wrote it last (host,
 * pid, process start time: RunStarted / RunResumed). On the same host the answer is exact: the pid
 * exists and started when the log says (so a reused pid is not mistaken for the writer). On
 * another host, the store's heartbeat for the stream answers: the engine renews it while it runs.
 */
import { readFileSync } from "node:fs"
import { hostname } from "node:os"
import type { Writer } from "../log/index.ts"

const me: Writer = {
  host: hostname(),
  pid: process.pid,
  processStartedAt: Math.round(Date.now() - process.uptime() * 1000),
}

/** The writer record of this process (computed once: the start time must not drift). */
export const currentWriter = (): Writer => me

/** Whether `w` is this very process. */
export const isThisProcess = (w: Writer): boolean => w.host === me.host && w.pid === me.pid

/** Seconds since boot at which `pid` started, from /proc (Linux); undefined elsewhere. */
const procStartMs = (pid: number): number | undefined => {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8")
    // Field 22 (starttime, in clock ticks since boot) counts from after the command's parentheses.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
    const ticks = Number(fields[19])
    const btime = /^btime (\d+)$/m.exec(readFileSync("/proc/stat", "utf8"))
    if (!Number.isFinite(ticks) || !btime) return undefined
    // USER_HZ is 100 on every Linux the tool supports.
    return Number(btime[1]) * 1000 + ticks * 10
  } catch {
    return undefined
  }
}

const pidExists = (pid: number): boolean => {
  try {
    process.kill(pid, 0)
    return true
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM"
  }
}

/** How long a heartbeat stays good: the engine renews it every HEARTBEAT_MS. */
export const HEARTBEAT_MS = 5_000
export const HEARTBEAT_STALE_MS = 30_000

export type Liveness = "alive" | "gone"

/**
 * `alive` / `gone` for a writer on this host (pid and start time); elsewhere by the heartbeat:
 * renewed within HEARTBEAT_STALE_MS is alive, older or absent is gone (an imported log, or a
 * writer that died).
 */
export const writerLiveness = (
  writer: Writer | undefined,
  heartbeatAt: number | undefined,
  now: number,
): Liveness => {
  if (writer && writer.host === hostname()) {
    if (writer.pid === process.pid) return "alive"
    if (!pidExists(writer.pid)) return "gone"
    const started = procStartMs(writer.pid)
    // A pid started more than 2 s away from the recorded start is another process.
    if (started !== undefined && Math.abs(started - writer.processStartedAt) > 2_000) return "gone"
    return "alive"
  }
  if (heartbeatAt === undefined) return "gone"
  return now - heartbeatAt <= HEARTBEAT_STALE_MS ? "alive" : "gone"
}

/**
 * The status a reader should see: a run whose log says "running" but whose writer is gone was
 * killed (SIGKILL, a crash, a lost machine), so it is interrupted, and resumable.
 */
export const effectiveStatus = <S extends string>(
  status: S,
  writer: Writer | undefined,
  heartbeatAt: number | undefined,
  now: number,
): S | "interrupted" =>
  status === "running" && writerLiveness(writer, heartbeatAt, now) === "gone" ? "interrupted" : status
