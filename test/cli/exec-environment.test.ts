/**
 * The environment of a PyTorch run through the real binary (issue 18, item 4b): RunStarted records
 * what exact replay depends on (torch version and build, BLAS library, threads, CPU), `show`
 * prints it, and a replay that diverges says whether the environment differs. A BLAS switch is
 * simulated by editing the recorded RunStarted (and a loss) in the run's store.
 */
import { rmSync } from "node:fs"
import { join } from "node:path"
import Database from "better-sqlite3"
import { afterAll, describe, expect, it } from "vitest"
import { runCli, tempDir, writeJson } from "../support/cli-helpers.ts"
import { torchTestsRun } from "../support/exec-support.ts"

const dir = tempDir("interleave-exec-env-")
afterAll(() => rmSync(dir, { recursive: true, force: true }))
const store = join(dir, "runs.db")
const env = { INTERLEAVE_TRAINER_STDERR: "quiet", INTERLEAVE_PROGRESS: "0" }
const cli = (args: string[]) => runCli([...args, "--store", store], { env })

/** The fields of the payloads the test edits (a StepCompleted's losses, a RunStarted's environment). */
interface Payload {
  readonly step?: number
  readonly losses: Record<string, number>
  readonly adapter: { readonly environment: Record<string, string> }
}

/** Rewrites, in the store, the payload of the first event of `run` that `pick` picks. */
const edit = (run: string, pick: (type: string, data: Payload) => boolean, f: (d: Payload) => void) => {
  const db = new Database(store)
  try {
    const rows = db
      .prepare("SELECT position, type, data FROM events WHERE stream = ? ORDER BY position")
      .all(run) as Array<{ position: number; type: string; data: string }>
    const row = rows.find((r) => pick(r.type, JSON.parse(r.data)))
    if (!row) throw new Error("no such event")
    const data = JSON.parse(row.data) as Payload
    f(data)
    db.prepare("UPDATE events SET data = ? WHERE stream = ? AND position = ?").run(
      JSON.stringify(data),
      run,
      row.position,
    )
  } finally {
    db.close()
  }
}

const REFERENCE_BLAS = "/usr/lib/x86_64-linux-gnu/blas/libblas.so.3"

describe.runIf(torchTestsRun("the environment tests with the PyTorch reference trainer"))(
  "the environment of a PyTorch run",
  () => {
    // Seven starts of the binary, five of the trainer (torch imported), some 80 torch steps:
    // sized at 15 s, 30 s and 1 s each (test/support's allowances on a loaded 2-core machine).
    it("is recorded and shown; a diverging replay names a BLAS that differs, or says the environment matched", async () => {
      const spec = writeJson(dir, "env.json", {
        name: "env",
        seed: 3,
        phases: [{ name: "joint", steps: 16, ratio: { visual: 3, text: 1 } }],
        batch: { visual: { size: 2 }, text: { size: 2 } },
        optimizer: { kind: "adamw", lr: 1e-3, groups: [{ name: "backbone" }, { name: "head" }] },
      })
      const r = await cli(["run", spec, "--adapter", "pytorch", "--eval-every", "0", "--run-id", "e"])
      expect(r.code, r.stderr).toBe(0)
      const exported = await cli(["export", "e"])
      const started = JSON.parse(exported.stdout.split("\n")[0]!) as {
        version: number
        data: { adapter: { environment: Record<string, string> } }
      }
      expect(started.version).toBe(4)
      const recorded = started.data.adapter.environment
      expect(Object.keys(recorded)).toEqual(
        expect.arrayContaining(["python", "torch", "torchBuild", "blas", "threads", "cpu"]),
      )
      expect(recorded.threads).toBe("1")
      expect(recorded.torchBuild).toMatch(/BLAS_INFO=/)
      expect(recorded.blas).toMatch(/^\//)
      const show = await cli(["show", "e"])
      expect(show.stdout).toContain(`environment: python=${recorded.python}; torch=${recorded.torch}; `)
      expect(show.stdout).toContain(`; threads=1; `)

      const honest = await cli(["replay", "e"])
      expect(honest.code, honest.stderr).toBe(0)
      expect(honest.stdout).toContain("replay matches the log")
      expect(honest.stdout).not.toContain("environment")

      // A loss that moved with nothing else changed: the environment is not the explanation.
      edit(
        "e",
        (t, d) => t === "StepCompleted" && d.step === 10,
        (d) => {
          d.losses.total = d.losses.total! * 1.001
        },
      )
      const moved = await cli(["replay", "e"])
      expect(moved.code).toBe(1)
      expect(moved.stderr).toMatch(
        /diverges at step 10 \(event \d+\): StepCompleted\.losses\.total: recorded/,
      )
      expect(moved.stderr).toContain(
        "; the environment matched the recorded one (python, torch, torchBuild, ",
      )

      // As if the run had been recorded before a package switched libblas.so.3 to another library.
      edit(
        "e",
        (t) => t === "RunStarted",
        (d) => {
          d.adapter.environment.blas = REFERENCE_BLAS
        },
      )
      const switched = await cli(["replay", "e"])
      expect(switched.code).toBe(1)
      expect(switched.stderr).toContain(
        `; the environment differs: blas ${REFERENCE_BLAS} → ${recorded.blas}`,
      )
      const json = await cli(["replay", "e", "--json"])
      expect(json.code).toBe(1)
      expect(JSON.parse(json.stdout)).toMatchObject({
        ok: false,
        divergence: { step: 10, path: "StepCompleted.losses.total" },
        environment: {
          status: "differs",
          differences: [{ key: "blas", recorded: REFERENCE_BLAS, replayed: recorded.blas }],
        },
      })
    }, 335_000)
  },
)
