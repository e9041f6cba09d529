/**
 * Runs test/store/store-writer.ts as its own process, for the cross-process store tests (not a
 * test itself). The writer is bundled once per test process with esbuild, its packages left
 * external: through tsx every writer spent ~1.8 CPU-seconds compiling effect and the stores.
 */
import { execFile } from "node:child_process"
import { mkdirSync } from "node:fs"
import { join, resolve } from "node:path"
import { Effect } from "effect"

const ROOT = resolve(import.meta.dirname, "../..")

let bundled: Promise<string> | undefined

/** The bundled writer: under node_modules/, so that its packages resolve from there. */
const writerBundle = (): Promise<string> => {
  bundled ??= (async () => {
    const { build } = await import("esbuild")
    const dir = join(ROOT, "node_modules", ".cache", "interleave-test")
    mkdirSync(dir, { recursive: true })
    // One file per fork, rewritten by the next run: forks end without running exit handlers.
    const outfile = join(dir, `store-writer-${process.env.VITEST_POOL_ID ?? process.pid}.mjs`)
    await build({
      entryPoints: [join(ROOT, "test", "store", "store-writer.ts")],
      bundle: true,
      platform: "node",
      target: "node20",
      format: "esm",
      packages: "external",
      outfile,
      logLevel: "warning",
    })
    return outfile
  })()
  return bundled
}

/** Starts a writer with these arguments (see store-writer.ts) and returns its tallies. */
export const storeWriter = (args: ReadonlyArray<string>) =>
  Effect.flatMap(Effect.promise(writerBundle), (entry) =>
    Effect.async<{ writer: string; conflicts: number }, Error>((resume) => {
      execFile(process.execPath, [entry, ...args], { cwd: ROOT }, (error, stdout, stderr) =>
        resume(
          error
            ? Effect.fail(new Error(`${args.join(" ")}: ${stderr || error.message}`))
            : Effect.succeed(JSON.parse(stdout)),
        ),
      )
    }),
  )
