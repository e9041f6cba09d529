/**
 * A log file is untrusted input (issue 18): the run id written inside it goes through the same
 * check as `run --run-id`, and `delete` never removes anything outside the store's checkpoint
 * folder, whatever the store holds (a run stored under a path-like id by an older version) and
 * whatever its checkpoint folder links to.
 */
import { existsSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { Effect, Layer } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { EventStore } from "../../core/store/index.ts"
import { SqliteEventStoreLive } from "../../core/store/sqlite.ts"
import { tempDir, writeJson } from "../support/cli-helpers.ts"
import { cliInProcess as cli } from "../support/cli-inprocess.ts"

const SPEC = {
  name: "small",
  seed: 1,
  phases: [{ name: "joint", steps: 9, ratio: { visual: 8, text: 1 } }],
  batch: { visual: { size: 2 }, text: { size: 2 } },
  optimizer: { kind: "adamw", lr: 1e-4, groups: [{ name: "all" }] },
}

let dir: string
/** The lines of a completed 9-step run's JSONL log, parsed. */
let lines: Array<{ type: string; position: number; data: Record<string, unknown> }>

const ok = async (args: string[]) => {
  const r = await cli(args)
  expect(r.code, `${args.join(" ")}: ${r.stderr}`).toBe(0)
  return r
}

beforeAll(async () => {
  dir = tempDir("interleave-untrusted-")
  const spec = writeJson(dir, "small.json", SPEC)
  const store = join(dir, "made.db")
  await ok(["run", spec, "--run-id", "r1", "--store", store])
  await ok(["export", "r1", "--store", store, "--out", join(dir, "r1.jsonl")])
  lines = readFileSync(join(dir, "r1.jsonl"), "utf8")
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l))
})

afterAll(() => rmSync(dir, { recursive: true, force: true }))

/** `lines` with RunStarted's runId replaced, written to `name`. */
const logWithRunId = (name: string, runId: string): string => {
  const text = lines
    .map((l) => JSON.stringify(l.type === "RunStarted" ? { ...l, data: { ...l.data, runId } } : l))
    .join("\n")
  const file = join(dir, name)
  writeFileSync(file, `${text}\n`)
  return file
}

/** A folder with a file in it, to see that it survives. */
const plant = (path: string): string => {
  mkdirSync(path, { recursive: true })
  writeFileSync(join(path, "precious.txt"), "keep me")
  return join(path, "precious.txt")
}

const runIds = async (store: string): Promise<string[]> => {
  const r = await ok(["runs", "--json", "--store", store])
  return (JSON.parse(r.stdout) as Array<{ runId: string }>).map((x) => x.runId)
}

describe("import: the run id inside a log", () => {
  it("a log naming ../../x is refused (exit 2, naming the file, its line and the field); the store and the folder it points at are untouched", async () => {
    const base = join(dir, "case-a")
    const store = join(base, "s", "t", "store.db")
    mkdirSync(join(base, "s", "t"), { recursive: true })
    // <store>.checkpoints/../../x is base/s/x
    const precious = plant(join(base, "s", "x"))
    const log = logWithRunId("dotdot.jsonl", "../../x")
    const r = await cli(["import", log, "--store", store])
    expect(r.code).toBe(2)
    expect(r.stderr).toContain(`${log}:1: field "data.runId" of RunStarted: run id "../../x"`)
    expect(r.stderr).toContain("nothing was imported")
    expect(r.stderr).toContain("--run-id")
    expect(r.stderr).not.toMatch(/\n\s+at |InputError/)
    // Refused before the store was opened: it was not even created.
    expect(existsSync(store)).toBe(false)
    expect(readFileSync(precious, "utf8")).toBe("keep me")
    // The user names it instead: imported under that id.
    await ok(["import", log, "--store", store, "--run-id", "x"])
    expect(await runIds(store)).toEqual(["x"])
    const d = await ok(["delete", "x", "--store", store])
    expect(d.stdout).toContain("deleted run x")
    expect(readFileSync(precious, "utf8")).toBe("keep me")
  })

  it("a 300-character id in a log is refused as --run-id refuses it (at most 128)", async () => {
    const store = join(dir, "long.db")
    const log = logWithRunId("long.jsonl", "a".repeat(300))
    const r = await cli(["import", log, "--store", store])
    expect(r.code).toBe(2)
    expect(r.stderr).toContain("must be at most 128 characters, got 300")
    expect(r.stderr).toContain(`${log}:1: field "data.runId"`)
    const flagged = await cli([
      "import",
      join(dir, "r1.jsonl"),
      "--store",
      store,
      "--run-id",
      "b".repeat(129),
    ])
    expect(flagged.code).toBe(2)
    expect(flagged.stderr).toContain("--run-id:")
    expect(flagged.stderr).toContain("must be at most 128 characters, got 129")
    for (const bad of ["../y", ".staging/r1/h:1:ab", "a/b", "-x"]) {
      const b = await cli(["import", join(dir, "r1.jsonl"), "--store", store, "--run-id", bad])
      expect(b.code, bad).toBe(2)
      expect(b.stderr, bad).toContain("--run-id:")
    }
    expect(existsSync(store)).toBe(false)
  })

  it("a run id with a control character or a slash in a log is refused too; verify --log shows it quoted and says import refuses it", async () => {
    for (const [i, id] of ["r\u001b[2J", "a/b", ".hidden", "x\u202e"].entries()) {
      const log = logWithRunId(`odd-${i}.jsonl`, id)
      const r = await cli(["import", log, "--store", join(dir, "odd.db")])
      expect(r.code, JSON.stringify(id)).toBe(2)
      expect(r.stderr).toContain('field "data.runId"')
      const raw = id.includes("\u001b") || id.includes("\u202e")
      if (raw) expect(r.stderr).not.toContain(id)
      const v = await cli(["verify", "--log", log])
      expect(v.code, v.stderr).toBe(0)
      // Quoted with escapes: a bidi override is written \u202e, not sent to the terminal.
      const quoted = JSON.stringify(id).replace("\u202e", "\\u202e")
      expect(v.stdout.split("\n")[0]).toContain(`note: the log's run id ${quoted}`)
      expect(v.stdout).toContain("import refuses it")
      if (raw) expect(v.stdout).not.toContain(id)
    }
  })
})

describe("delete never removes anything outside the store's checkpoint folder", () => {
  /** A store holding run `runId` (renamed from an imported r1, as an older version could leave it). */
  const storeWith = async (store: string, runId: string) => {
    await ok(["import", join(dir, "r1.jsonl"), "--store", store])
    await Effect.runPromise(
      Effect.flatMap(EventStore, (es) => es.renameStream("r1", runId)).pipe(
        Effect.provide(Layer.fresh(SqliteEventStoreLive(store))),
      ),
    )
  }

  it("a run stored as ../../x: its events go, the sibling folder ../../x stays", async () => {
    const base = join(dir, "case-b")
    mkdirSync(join(base, "s", "t"), { recursive: true })
    const store = join(base, "s", "t", "store.db")
    const precious = plant(join(base, "s", "x"))
    mkdirSync(`${store}.checkpoints`, { recursive: true })
    await storeWith(store, "../../x")
    expect(await runIds(store)).toEqual(["../../x"])
    const r = await cli(["delete", "../../x", "--store", store, "--json"])
    expect(r.code, r.stderr).toBe(0)
    expect(JSON.parse(r.stdout)).toMatchObject({ runId: "../../x", checkpoints: null })
    expect(await runIds(store)).toEqual([])
    expect(readFileSync(precious, "utf8")).toBe("keep me")
  })

  it("a run's checkpoint folder that is a link to a folder outside: refused (exit 2), nothing deleted, the folder stays", async () => {
    const base = join(dir, "case-c")
    mkdirSync(base, { recursive: true })
    const store = join(base, "store.db")
    await ok(["import", join(dir, "r1.jsonl"), "--store", store])
    const precious = plant(join(base, "outside"))
    mkdirSync(`${store}.checkpoints`, { recursive: true })
    symlinkSync(join(base, "outside"), join(`${store}.checkpoints`, "r1"))
    const r = await cli(["delete", "r1", "--store", store])
    expect(r.code).toBe(2)
    expect(r.stderr).toContain("outside the store's checkpoint folder")
    expect(r.stderr).toContain("nothing was deleted")
    expect(r.stderr).not.toMatch(/\n\s+at /)
    expect(readFileSync(precious, "utf8")).toBe("keep me")
    expect(await runIds(store)).toEqual(["r1"])
  })

  it("a checkpoint folder that is itself a link (checkpoints kept on another disk): the run's folder there goes, its siblings stay", async () => {
    const base = join(dir, "case-d")
    mkdirSync(base, { recursive: true })
    const store = join(base, "store.db")
    await ok(["import", join(dir, "r1.jsonl"), "--store", store])
    mkdirSync(join(base, "disk", "ckpt"), { recursive: true })
    symlinkSync(join(base, "disk", "ckpt"), `${store}.checkpoints`)
    plant(join(base, "disk", "ckpt", "r1"))
    const other = plant(join(base, "disk", "ckpt", "other-run"))
    const beside = plant(join(base, "disk", "beside"))
    const r = await ok(["delete", "r1", "--store", store])
    expect(r.stdout).toContain("and its checkpoints")
    expect(existsSync(join(base, "disk", "ckpt", "r1"))).toBe(false)
    expect(readFileSync(other, "utf8")).toBe("keep me")
    expect(readFileSync(beside, "utf8")).toBe("keep me")
    expect(existsSync(`${store}.checkpoints`)).toBe(true)
  })

  it("store copy refuses to carry a run id that cannot name a run (exit 2, nothing copied)", async () => {
    const base = join(dir, "case-e")
    mkdirSync(base, { recursive: true })
    const from = join(base, "from.db")
    const to = join(base, "to.db")
    await storeWith(from, "../../x")
    const r = await cli(["store", "copy", "--from", from, "--to", to])
    expect(r.code).toBe(2)
    expect(r.stderr).toContain('run id "../../x"')
    expect(r.stderr).toContain("nothing copied")
    expect(existsSync(to)).toBe(false)
  })
})
