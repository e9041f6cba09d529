/**
 * Peak resident set size of a child process (not a test itself): samples /proc/PID/status every
 * 20 ms while the process runs. Linux only, as the memory tests are.
 */
import type { ChildProcess } from "node:child_process"
import { readFileSync } from "node:fs"

export interface PeakRss {
  readonly code: number | null
  readonly peakMb: number
  readonly stdout: string
  readonly stderr: string
}

/** Waits for `child` to exit, sampling its RSS; the peak in MB (0 if it ended before a sample). */
export const peakRssOf = (child: ChildProcess) =>
  new Promise<PeakRss>((resolve) => {
    let peak = 0
    let stdout = ""
    let stderr = ""
    child.stdout?.on("data", (d) => {
      stdout += d
    })
    child.stderr?.on("data", (d) => {
      stderr += d
    })
    const timer = setInterval(() => {
      try {
        const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${child.pid}/status`, "utf8"))
        if (m) peak = Math.max(peak, Number(m[1]) / 1024)
      } catch {
        // The process has just exited.
      }
    }, 20)
    child.on("close", (code) => {
      clearInterval(timer)
      resolve({ code, peakMb: peak, stdout, stderr })
    })
  })
