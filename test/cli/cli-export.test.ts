/**
 * `export --out` through the CLI, in-process as the binary runs it: never onto the store (by path,
 * -wal/-shm, symlink or hard link), never over an existing file without --force, written whole or
 * not at all, and an unwritable target is one line and exit 2.
 */
import {
  existsSync,
  linkSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs"
import { join } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { scenario, tempDir } from "../support/cli-helpers.ts"
import { cliInProcess as runCli } from "../support/cli-inprocess.ts"

const dir = tempDir()
afterAll(() => rmSync(dir, { recursive: true, force: true }))
const t = join(dir, "t")
const store = join(t, "victim.db")

/** Exit 2 with one line on stderr matching `reason`, no stack trace. */
const expectRefused = (r: { code: number | null; stderr: string }, reason: RegExp) => {
  expect(r.code).toBe(2)
  expect(r.stderr).toMatch(reason)
  expect(r.stderr.trim().split("\n")).toHaveLength(1)
  expect(r.stderr).not.toMatch(/\n\s+at /)
}

const runIds = async () =>
  (JSON.parse((await runCli(["runs", "--store", store, "--json"])).stdout) as Array<{ runId: string }>).map(
    (r) => r.runId,
  )

describe("export --out", () => {
  let expected = ""
  beforeAll(async () => {
    mkdirSync(t, { recursive: true })
    for (const id of ["a", "b"]) {
      const r = await runCli([
        "run",
        scenario("text-first-3to2.json"),
        "--steps",
        "20",
        "--run-id",
        id,
        "--store",
        store,
      ])
      expect(r.code).toBe(0)
    }
    expected = (await runCli(["export", "a", "--store", store])).stdout
    expect(expected.split("\n").length).toBeGreaterThan(20)
  })

  it("refuses the store itself, its -wal/-shm, a symlink and a hard link to it, even with --force", async () => {
    symlinkSync("victim.db", join(t, "alias.db"))
    linkSync(store, join(t, "hard.db"))
    const before = readFileSync(store)
    for (const out of [store, `${store}-wal`, `${store}-shm`, join(t, "alias.db"), join(t, "hard.db")]) {
      for (const force of [[], ["--force"]]) {
        const r = await runCli(["export", "a", "--store", store, "--out", out, ...force])
        expectRefused(r, new RegExp(`--out ${out}: is the event store \\(${store}\\)`))
      }
    }
    // And the other way round: the store named through the symlink.
    const r = await runCli(["export", "a", "--store", join(t, "alias.db"), "--out", store, "--force"])
    expectRefused(r, /is the event store/)
    expect(readFileSync(store).equals(before)).toBe(true)
    expect(await runIds()).toEqual(["a", "b"])
    expect(readdirSync(t).sort()).toEqual(["alias.db", "hard.db", "victim.db"])
    rmSync(join(t, "alias.db"))
    rmSync(join(t, "hard.db"))
  })

  it("refuses to overwrite an existing file without --force, and replaces it whole with it", async () => {
    const out = join(dir, "a.jsonl")
    writeFileSync(out, "keep me\n")
    expectRefused(
      await runCli(["export", "a", "--store", store, "--out", out]),
      /--out .*a\.jsonl: already exists; add --force to overwrite it/,
    )
    expect(readFileSync(out, "utf8")).toBe("keep me\n")
    const r = await runCli(["export", "a", "--store", store, "--out", out, "--force"])
    expect(r.code).toBe(0)
    expect(readFileSync(out, "utf8")).toBe(expected)
  })

  it("writes a new file whole, and leaves none (nor a temporary file) when the export fails", async () => {
    const out = join(dir, "fresh", "b.jsonl")
    mkdirSync(join(dir, "fresh"))
    expect((await runCli(["export", "a", "--store", store, "--out", out])).code).toBe(0)
    expect(readFileSync(out, "utf8")).toBe(expected)
    const ghost = await runCli(["export", "ghost", "--store", store, "--out", join(dir, "fresh", "g.jsonl")])
    expect(ghost.code).toBe(2)
    expect(readdirSync(join(dir, "fresh"))).toEqual(["b.jsonl"])
  })

  it("an unwritable --out is one line naming it and the reason, exit 2", async () => {
    const cases: Array<readonly [string, RegExp]> = [
      [join(dir, "no", "such", "x.jsonl"), /cannot write \(no such directory: .*no\/such\)/],
      [t, /is a directory, expected a file to write/],
      ["/dev/full", /\/dev\/full: cannot write \(no space left on the device\)/],
    ]
    for (const [out, reason] of cases) {
      const r = await runCli(["export", "a", "--store", store, "--out", out])
      expectRefused(r, reason)
      expect(r.stderr).toContain(`--out ${out}`)
    }
    expect(existsSync(join(dir, "no"))).toBe(false)
  })
})
