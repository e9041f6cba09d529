import { readFileSync } from "node:fs"

/** Which signal stopped the process, for the exit code and for the run's RunInterrupted event. */
let received: "SIGINT" | "SIGTERM" | undefined
/** Set when the process stopped itself because the wrapper that started it went away. */
let launcherGone: string | undefined

export const noteSignal = (s: "SIGINT" | "SIGTERM"): void => {
  received ??= s
}

export const receivedSignal = (): "SIGINT" | "SIGTERM" | undefined => received

export const interruptReason = (): string =>
  launcherGone !== undefined && received === "SIGTERM"
    ? `stopped: ${launcherGone}`
    : received === "SIGTERM"
      ? "stopped by SIGTERM"
      : received === "SIGINT"
        ? "stopped by SIGINT (Ctrl-C)"
        : "interrupted"

/** State and parent of `pid` from /proc, or undefined when it is gone (or there is no /proc). */
const statOf = (pid: number): { state: string; ppid: number } | undefined => {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8")
    // The state follows the command name in parentheses (which may hold spaces); the ppid follows it.
    const [state, ppid] = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
    return { state: state ?? "", ppid: Number(ppid) }
  } catch {
    return undefined
  }
}

const parentOf = (pid: number): number | undefined => statOf(pid)?.ppid

/** How many times `pid` has slept and woken (a shell blocked in wait() wakes only for a signal). */
const wakeups = (pid: number): number | undefined => {
  try {
    const m = /^voluntary_ctxt_switches:\s*(\d+)$/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"))
    return m ? Number(m[1]) : undefined
  } catch {
    return undefined
  }
}

/** Whether `pid` is `sh -c SCRIPT ...` with SCRIPT one simple command (no pipe, list, job, subshell). */
const simpleShell = (pid: number): boolean => {
  try {
    const argv = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0")
    const c = argv.indexOf("-c")
    return c >= 0 && argv[c + 1] !== undefined && !/[|&;<>()`$\n]/.test(argv[c + 1]!)
  } catch {
    return false
  }
}

const commOf = (pid: number): string => {
  try {
    return readFileSync(`/proc/${pid}/comm`, "utf8").trim()
  } catch {
    return ""
  }
}

/**
 * Started by a wrapper (npx, `npm exec`, an npm script: `npm_lifecycle_event` is set; or with
 * INTERLEAVE_WATCH_PARENT=1), the CLI stops itself as if by SIGTERM once that wrapper is gone, and
 * as if by SIGINT once the shell between it and us was sent SIGINT (below): a
 * process manager that signals npx alone makes npm forward the signal to the `sh -c` between it
 * and us (dash dies of SIGTERM), never to us, and we would go on writing, orphaned. Watched: our
 * parent, and the parent's parent when ours is that shell; polled every `everyMs`. Off for a
 * plain start (`nohup interleave run ... &` outlives its shell on purpose) and with
 * INTERLEAVE_WATCH_PARENT=0.
 */
export const watchLauncher = (stop: (signal: "SIGINT" | "SIGTERM") => void, everyMs = 250): void => {
  const setting = process.env.INTERLEAVE_WATCH_PARENT
  const wrapped = setting === "1" || (setting !== "0" && process.env.npm_lifecycle_event !== undefined)
  if (!wrapped || process.platform === "win32") return
  const parent = process.ppid
  if (parent <= 1) return
  const shell = ["sh", "dash", "bash", "zsh"].includes(commOf(parent))
  const grandparent = shell ? parentOf(parent) : undefined
  const launcher = `the ${process.env.npm_lifecycle_event === undefined ? "wrapper" : "npx or npm"} that started it (pid ${grandparent ?? parent}) is gone`
  // npm forwards SIGINT to the shell, which holds it until we end (bash and dash wait for their
  // child, then act on it): the only trace is that the shell, blocked in wait(), woke up. It wakes
  // for nothing else while we run (SIGCHLD comes when we end); so a wake-up is taken as SIGINT.
  // A shell that is dying wakes too (SIGTERM to the whole group, as `timeout` sends): a wake-up is
  // taken as SIGINT only if, a poll later, the shell still waits and no signal came to us.
  // Only a shell whose whole script is one simple command (npx's `sh -c 'interleave' ...`, an npm
  // script `interleave run ...`): in a pipeline or with jobs of its own, it wakes as they end.
  const shellWakeups = shell && simpleShell(parent) ? wakeups(parent) : undefined
  let woke = false
  const timer = setInterval(() => {
    if (received !== undefined) return clearInterval(timer)
    const p = statOf(parent)
    const gone =
      process.ppid !== parent ||
      p === undefined ||
      p.state === "Z" ||
      p.state === "X" ||
      (grandparent !== undefined && grandparent > 1 && p.ppid !== grandparent)
    if (gone) {
      clearInterval(timer)
      launcherGone = launcher
      noteSignal("SIGTERM")
      stop("SIGTERM")
      return
    }
    if (woke) {
      clearInterval(timer)
      noteSignal("SIGINT")
      stop("SIGINT")
      return
    }
    if (shellWakeups !== undefined) woke = (wakeups(parent) ?? shellWakeups) !== shellWakeups
  }, everyMs)
  timer.unref()
}
