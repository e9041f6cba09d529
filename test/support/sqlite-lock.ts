/**
 * Another process holding SQLite's write lock on a store (not a test itself), for the tests of
 * what a writer does when it finds the store locked.
 */
import { type ChildProcess, spawn } from "node:child_process"
import { resolve } from "node:path"
import { Effect } from "effect"

const ROOT = resolve(import.meta.dirname, "../..")

/**
 * Starts a process that takes the write lock on `file` (BEGIN IMMEDIATE) and holds it for `ms`,
 * or, without `ms`, until `release` (its stdin ends: also when this process dies), then commits
 * and exits; succeeds once the lock is held. Held until released, the lock lasts exactly as long
 * as the test needs, however slow a loaded machine makes what it waits for.
 */
export const holdLock = (file: string, ms?: number) =>
  Effect.async<ChildProcess, Error>((resume) => {
    const child = spawn(
      process.execPath,
      [
        "-e",
        `const db = new (require("better-sqlite3"))(process.argv[1]);
         db.exec("BEGIN IMMEDIATE");
         process.stdout.write("locked\\n");
         const release = () => { db.exec("COMMIT"); db.close(); };
         if (process.argv[2] === "") { process.stdin.resume(); process.stdin.on("end", release); }
         else setTimeout(release, Number(process.argv[2]));`,
        file,
        ms === undefined ? "" : String(ms),
      ],
      { cwd: ROOT, stdio: [ms === undefined ? "pipe" : "ignore", "pipe", "inherit"] },
    )
    child.stdout!.once("data", () => resume(Effect.succeed(child)))
    child.once("error", (e) => resume(Effect.fail(e)))
  })

/** Lets a holder started without `ms` commit and exit. */
export const release = (holder: ChildProcess) => Effect.sync(() => holder.stdin?.end())

/** Waits for a process to exit. */
export const exited = (child: ChildProcess) =>
  Effect.async<void>((resume) => {
    if (child.exitCode !== null) resume(Effect.void)
    else child.once("exit", () => resume(Effect.void))
  })
