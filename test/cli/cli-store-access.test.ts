/**
 * The reading commands open the store read-only, through the real binary: in a fresh folder they
 * create nothing, on a read-only store (a 444 file in a 555 folder) they change nothing, and a
 * store owned by another user can be read (run as `nobody` where runuser exists).
 */
import { execFileSync, spawnSync } from "node:child_process"
import { chmodSync, existsSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { Effect } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { BIN, runCli, scenario, tempDir } from "../support/cli-helpers.ts"
import { cliInProcess } from "../support/cli-inprocess.ts"
import { exited, holdLock, release } from "../support/sqlite-lock.ts"
import { countEvents } from "../support/store-file.ts"
import { waitUntil } from "../support/timeouts.ts"

const dir = tempDir()
afterAll(() => {
  for (const d of [dir, join(dir, "ro")]) if (existsSync(d)) chmodSync(d, 0o755)
  rmSync(dir, { recursive: true, force: true })
})

/** Every command that only reads, on run `small`. */
const READERS = [
  ["runs"],
  ["show", "small"],
  ["verify", "--log", "small"],
  ["export", "small"],
  ["diff", "small", "small"],
  ["replay", "small"],
]

/** A file's bytes and times, and its folder's listing. */
const snapshot = (file: string) => ({
  bytes: readFileSync(file).toString("base64"),
  mtimeMs: statSync(file).mtimeMs,
  siblings: readdirSync(join(file, "..")).sort(),
})

describe("in a folder with no store", () => {
  it("runs says so, and no command that only reads creates anything", async () => {
    const cwd = tempDir("interleave-fresh-")
    try {
      const runs = await cliInProcess(["runs"], { cwd })
      expect(runs.stderr).toBe("")
      expect(runs.code).toBe(0)
      expect(runs.stdout.trim()).toBe("no runs (no store at .interleave/runs.db)")
      expect((await cliInProcess(["verify", scenario("trex2-joint-8to1.json")], { cwd })).code).toBe(0)
      for (const args of [
        ["show", "ghost"],
        ["replay", "ghost"],
        ["export", "ghost"],
        ["verify", "--log", "ghost"],
        ["diff", "ghost", "other"],
      ]) {
        const r = await cliInProcess(args, { cwd })
        expect(r.code, args.join(" ")).toBe(2)
        expect(r.stderr, args.join(" ")).toMatch(/no run "ghost"/)
      }
      expect(readdirSync(cwd)).toEqual([])
    } finally {
      rmSync(cwd, { recursive: true, force: true })
    }
  })
})

describe("a read-only store", () => {
  const store = join(dir, "ro", "runs.db")
  beforeAll(async () => {
    const r = await cliInProcess([
      "run",
      scenario("text-first-3to2.json"),
      "--steps",
      "40",
      "--run-id",
      "small",
      "--store",
      store,
    ])
    expect(r.code).toBe(0)
    expect(readdirSync(join(dir, "ro"))).toEqual(["runs.db"])
  })

  it("a 444 file in a 555 folder: every reading command works and changes nothing, no -wal/-shm", async () => {
    chmodSync(store, 0o444)
    chmodSync(join(dir, "ro"), 0o555)
    try {
      const before = snapshot(store)
      for (const args of READERS) {
        const r = await cliInProcess([...args, "--store", store], { cwd: dir })
        expect(r.stderr, args.join(" ")).toBe("")
        expect(r.code, args.join(" ")).toBe(0)
      }
      expect(snapshot(store)).toEqual(before)
      expect(readdirSync(dir).sort()).toEqual(["ro"])
    } finally {
      chmodSync(join(dir, "ro"), 0o755)
      chmodSync(store, 0o644)
    }
  })

  const asOther = (() => {
    if (process.getuid?.() !== 0) return "not running as root"
    const runuser = spawnSync("runuser", ["-u", "nobody", "--", "true"])
    return runuser.status === 0 ? undefined : "runuser -u nobody is not available"
  })()
  if (asOther !== undefined) {
    it.skip(`as another user: SKIPPED (${asOther})`, () => {})
    console.warn(`\n!!! cli-store-access: the other-user (EACCES) part is SKIPPED: ${asOther} !!!\n`)
  } else {
    it("owned by root, read by nobody: the reading commands work; a writing one exits 3", () => {
      // nobody may enter the folders but write none of them: the store's folder is root's 755.
      chmodSync(dir, 0o755)
      const before = snapshot(store)
      const asNobody = (args: string[]) =>
        spawnSync("runuser", ["-u", "nobody", "--", process.execPath, BIN, ...args, "--store", store], {
          cwd: dir,
          encoding: "utf8",
        })
      for (const args of READERS) {
        const r = asNobody(args)
        expect(r.stderr, args.join(" ")).toBe("")
        expect(r.status, args.join(" ")).toBe(0)
      }
      const write = asNobody(["run", scenario("text-first-3to2.json"), "--steps", "4"])
      expect(write.status).toBe(3)
      expect(write.stderr.trim().split("\n")).toHaveLength(1)
      expect(write.stderr).toMatch(/read-only|permission/)
      expect(snapshot(store)).toEqual(before)
      expect(execFileSync("stat", ["-c", "%U", store], { encoding: "utf8" }).trim()).toBe("root")
    })
  }
})

describe("a store another process keeps locked", () => {
  it("import gives up after the wait with exit 3 and says so in one line; nothing is imported", async () => {
    const store = join(dir, "locked.db")
    expect(
      (
        await runCli([
          "run",
          scenario("text-first-3to2.json"),
          "--steps",
          "20",
          "--run-id",
          "x",
          "--store",
          store,
        ])
      ).code,
    ).toBe(0)
    const log = join(dir, "x.jsonl")
    expect((await runCli(["export", "x", "--store", store, "--out", log])).code).toBe(0)
    // Held until the import has given up, however slow a loaded machine makes its start.
    const holder = await Effect.runPromise(holdLock(store, 120_000))
    try {
      const r = await runCli(["import", log, "--run-id", "y", "--store", store], {
        env: { INTERLEAVE_LOCK_WAIT_MS: "300" },
      })
      expect(r.code).toBe(3)
      expect(r.stderr.trim()).toBe(
        `interleave: cannot append to run y: ${store} is locked by another process (gave up after waiting 0.3 s for it)`,
      )
    } finally {
      holder.kill()
      await Effect.runPromise(exited(holder))
    }
    const runs = JSON.parse((await runCli(["runs", "--store", store, "--json"])).stdout) as Array<{
      runId: string
    }>
    expect(runs.map((r) => r.runId)).toEqual(["x"])
  })

  it("a run that finds the store locked mid-way ends with exit 3, keeps its steps, and names the resume command", async () => {
    const store = join(dir, "locked-run.db")
    const long = join(dir, "long-run.json")
    writeFileSync(
      long,
      JSON.stringify({
        name: "long",
        phases: [{ name: "joint", steps: 2_000_000, ratio: { visual: 8, text: 1 } }],
        batch: { visual: { size: 2 }, text: { size: 2 } },
        optimizer: { kind: "adamw", lr: 1e-4, groups: [{ name: "head" }] },
      }),
    )
    let writing = true
    const writer = runCli(["run", long, "--run-id", "z", "--store", store], {
      env: { INTERLEAVE_LOCK_WAIT_MS: "300" },
    }).finally(() => {
      writing = false
    })
    // Lock the store once the run has recorded steps, however long its start took; hold the lock
    // until the run has ended (it cannot finish its 2,000,000 steps otherwise).
    await waitUntil(
      "run z never recorded a step",
      () => (countEvents(store, "z", "StepCompleted") > 0 ? true : undefined),
      {
        stopped: () => (writing ? undefined : "it ended first"),
      },
    )
    const holder = await Effect.runPromise(holdLock(store))
    const r = await writer.finally(() => Effect.runPromise(release(holder)))
    await Effect.runPromise(exited(holder))
    expect(r.code).toBe(3)
    expect(r.stderr).toMatch(
      /is locked by another process .*; run z keeps every step recorded before this: resume it with `interleave resume z`/,
    )
    const runs = JSON.parse((await runCli(["runs", "--store", store, "--json"])).stdout) as Array<{
      runId: string
      stepsDone: number
      status: string
    }>
    expect(runs[0]).toMatchObject({ runId: "z", status: "interrupted" })
    expect(runs[0]!.stepsDone).toBeGreaterThan(0)
  })
})
