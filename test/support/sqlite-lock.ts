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
 * then commits and exits; succeeds once the lock is held.
 */
export const holdLock = (file: string, ms: number) =>
  Effect.async<ChildProcess, Error>((resume) => {
    const child = spawn(
      process.execPath,
      [
        "-e",
        `const db = new (require("better-sqlite3"))(process.argv[1]);
         db.exec("BEGIN IMMEDIATE");
         process.stdout.write("locked\\n");
         setTimeout(() => { db.exec("COMMIT"); db.close(); }, Number(process.argv[2]));`,
        file,
        String(ms),
      ],
      { cwd: ROOT, stdio: ["ignore", "pipe", "inherit"] },
    )
    child.stdout!.once("data", () => resume(Effect.succeed(child)))
    child.once("error", (e) => resume(Effect.fail(e)))
  })

/** Waits for a process to exit. */
export const exited = (child: ChildProcess) =>
  Effect.async<void>((resume) => {
    if (child.exitCode !== null) resume(Effect.void)
    else child.once("exit", () => resume(Effect.void))
  })
