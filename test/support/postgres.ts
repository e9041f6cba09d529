/**
 * A throwaway PostgreSQL server for tests and benchmarks (not a test itself).
 *
 * `startThrowawayPostgres` makes a fresh cluster with Debian's PostgreSQL binaries
 * (/usr/lib/postgresql/15/bin, or INTERLEAVE_PG_BIN_DIR) in a temporary folder: trust
 * authentication, listening on 127.0.0.1 on a free port with its Unix socket in that folder,
 * fsync off. Root may not run the server, so as root every PostgreSQL binary runs as the
 * `postgres` OS user (runuser) and the folder belongs to it. `stop` shuts the server down
 * (immediate mode: the data is thrown away), waits for it to exit and removes the folder. Should the process that
 * started it die without stopping it (killed, crashed), a detached watchdog shell notices within
 * a second and does the same, so no server outlives its owner.
 *
 * test/support/pg-global-setup.ts starts one for a whole vitest run and hands its URL to the
 * test files in INTERLEAVE_TEST_PG_URL; `testPostgresUrl` reads it there, and `createDatabase`
 * gives a test file a database of its own.
 */
import { type ChildProcess, execFile, spawn } from "node:child_process"
import * as fs from "node:fs"
import * as net from "node:net"
import * as os from "node:os"
import * as path from "node:path"
import { promisify } from "node:util"
import * as Reactivity from "@effect/experimental/Reactivity"
import * as PgClient from "@effect/sql-pg/PgClient"
import { Effect, Redacted } from "effect"

const run = promisify(execFile)

/** The URL of the server the tests use (set by the global setup, or by whoever runs the tests). */
export const PG_URL_ENV = "INTERLEAVE_TEST_PG_URL"
/** Why no server could be started (set by the global setup): the PostgreSQL tests skip. */
export const PG_SKIP_ENV = "INTERLEAVE_TEST_PG_SKIP"
/** `1`: a missing server fails the run instead of skipping the PostgreSQL tests (CI sets it). */
export const PG_REQUIRE_ENV = "INTERLEAVE_REQUIRE_PG"

/**
 * Where PostgreSQL's binaries are: INTERLEAVE_PG_BIN_DIR, else Debian's PostgreSQL 15, else the
 * newest other Debian PostgreSQL installed.
 */
export const PG_BIN_DIR = ((): string => {
  const given = process.env.INTERLEAVE_PG_BIN_DIR
  if (given !== undefined && given !== "") return given
  const preferred = "/usr/lib/postgresql/15/bin"
  if (fs.existsSync(path.join(preferred, "initdb"))) return preferred
  try {
    const versions = fs
      .readdirSync("/usr/lib/postgresql")
      .filter((v) => /^\d+$/.test(v) && fs.existsSync(path.join("/usr/lib/postgresql", v, "bin", "initdb")))
      .sort((a, b) => Number(b) - Number(a))
    if (versions[0] !== undefined) return path.join("/usr/lib/postgresql", versions[0], "bin")
  } catch {}
  return preferred
})()

/** No server can be started here; `message` says why. */
export class PostgresUnavailable extends Error {
  override readonly name = "PostgresUnavailable"
}

/**
 * initdb or the server's start ran past START_LIMIT_MS: it hangs (a slow start on a loaded machine
 * is waited for). Not a reason to skip the PostgreSQL tests: nothing says there is no server.
 */
export class PostgresHung extends Error {
  override readonly name = "PostgresHung"
}

/** Far past what initdb or a start take on the most loaded machine seen (seconds): only a hang reaches it. */
const START_LIMIT_MS = 600_000

export interface ThrowawayPostgres {
  /** postgres://postgres@127.0.0.1:PORT/postgres */
  readonly url: string
  readonly port: number
  /** The temporary folder holding the cluster (`data/`), its socket and its log. */
  readonly dir: string
  readonly postmasterPid: number
  /** Stops the server and removes its folder; safe to call more than once. */
  readonly stop: () => Promise<void>
}

const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const server = net.createServer()
    server.unref()
    server.on("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const address = server.address()
      const port = typeof address === "object" && address !== null ? address.port : 0
      server.close(() => resolve(port))
    })
  })

const stderrOf = (cause: unknown): string => {
  const e = cause as { stderr?: string; message?: string }
  return (e.stderr?.trim() || e.message || String(cause)).split("\n").slice(-3).join(" | ")
}

/** How to run PostgreSQL's binaries here: as `postgres` when we are root, else as ourselves. */
const runAs = async (): Promise<{ prefix: ReadonlyArray<string>; uid?: number; gid?: number }> => {
  if (process.getuid?.() !== 0) return { prefix: [] }
  let ids: [number, number]
  try {
    const [u, g] = await Promise.all([run("id", ["-u", "postgres"]), run("id", ["-g", "postgres"])])
    ids = [Number(u.stdout.trim()), Number(g.stdout.trim())]
  } catch {
    throw new PostgresUnavailable(
      "running as root and there is no `postgres` OS user to run the server as (root cannot)",
    )
  }
  if (!fs.existsSync("/usr/sbin/runuser") && !fs.existsSync("/sbin/runuser")) {
    throw new PostgresUnavailable("running as root and there is no `runuser` to run the server as `postgres`")
  }
  return { prefix: ["runuser", "-u", "postgres", "--"], uid: ids[0], gid: ids[1] }
}

const WATCHDOG = `
owner=$1; dir=$2; shift 2
while kill -0 "$owner" 2>/dev/null && [ -d "$dir" ]; do sleep 1; done
if [ -d "$dir" ]; then
  "$@" >/dev/null 2>&1 || kill -9 "$(head -n 1 "$dir/data/postmaster.pid" 2>/dev/null)" 2>/dev/null
  rm -rf "$dir"
fi`

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/**
 * Starts a fresh PostgreSQL cluster (about half a second). Fails with `PostgresUnavailable` when
 * this machine cannot run one (no binaries, no `postgres` user), with `PostgresHung` when initdb or
 * the server ran for START_LIMIT_MS without finishing, with another error when it could but the
 * server did not start.
 *
 * The postmaster runs as a child of this process (through runuser as root), not daemonised by
 * pg_ctl: `stop` signals it and waits for it to exit, and every process of the server has been
 * reaped by then, so none is left behind, not even as a zombie.
 */
export const startThrowawayPostgres = async (): Promise<ThrowawayPostgres> => {
  const bin = (name: string) => path.join(PG_BIN_DIR, name)
  for (const name of ["initdb", "pg_ctl", "postgres"]) {
    if (!fs.existsSync(bin(name))) {
      throw new PostgresUnavailable(`${bin(name)} is missing (Debian: apt-get install postgresql)`)
    }
  }
  const as = await runAs()
  const command = (file: string, args: ReadonlyArray<string>) => {
    const [head, ...rest] = [...as.prefix, file, ...args]
    return [head!, rest] as const
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "interleave-pg-"))
  const data = path.join(dir, "data")
  const pidFile = path.join(data, "postmaster.pid")
  const logFile = path.join(dir, "log")
  let server: ChildProcess | undefined
  let exited: Promise<void> = Promise.resolve()
  let postmasterPid = 0
  let stopped = false
  /** Immediate shutdown (the data is thrown away), then SIGKILL if it has not gone in 10 s. */
  const kill = async () => {
    if (server === undefined || server.exitCode !== null || server.signalCode !== null) return
    const signal = (sig: NodeJS.Signals) => {
      try {
        process.kill(postmasterPid > 0 ? postmasterPid : server!.pid!, sig)
      } catch {}
    }
    signal("SIGQUIT")
    const timer = setTimeout(() => signal("SIGKILL"), 10_000)
    await exited
    clearTimeout(timer)
  }
  const stop = async () => {
    if (stopped) return
    stopped = true
    try {
      await kill()
    } finally {
      fs.rmSync(dir, { recursive: true, force: true })
    }
  }
  try {
    if (as.uid !== undefined && as.gid !== undefined) fs.chownSync(dir, as.uid, as.gid)
    fs.chmodSync(dir, 0o700)
    try {
      const [file, args] = command(bin("initdb"), [
        "-D",
        data,
        "-A",
        "trust",
        "-U",
        "postgres",
        "-E",
        "UTF8",
        "--no-locale",
        "-N",
      ])
      await run(file, args, { cwd: os.tmpdir(), timeout: START_LIMIT_MS, killSignal: "SIGKILL" })
    } catch (cause) {
      if ((cause as { killed?: boolean }).killed)
        throw new PostgresHung(`initdb did not finish in ${START_LIMIT_MS / 1000} s: ${stderrOf(cause)}`)
      throw new Error(`initdb failed: ${stderrOf(cause)}`)
    }
    // Should this process die without stopping the server (SIGKILL), this shell stops it.
    const watchdog = spawn(
      "sh",
      [
        "-c",
        WATCHDOG,
        "watchdog",
        String(process.pid),
        dir,
        ...command(bin("pg_ctl"), ["stop", "-D", data, "-m", "immediate"]).flat(),
      ],
      { detached: true, stdio: "ignore" },
    )
    watchdog.unref()
    const conf = path.join(data, "postgresql.conf")
    const base = fs.readFileSync(conf, "utf8")
    for (let attempt = 1; ; attempt++) {
      const port = await freePort()
      fs.writeFileSync(
        conf,
        base +
          "\n# interleave throwaway test server\n" +
          "listen_addresses = '127.0.0.1'\n" +
          `port = ${port}\n` +
          `unix_socket_directories = '${dir}'\n` +
          "fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n" +
          "max_connections = 200\nshared_buffers = 64MB\n",
      )
      const log = fs.openSync(logFile, "a")
      const [file, args] = command(bin("postgres"), ["-D", data])
      const child = spawn(file, args, { cwd: os.tmpdir(), stdio: ["ignore", log, log] })
      fs.closeSync(log)
      server = child
      exited = new Promise((resolve) => child.once("exit", () => resolve()))
      // Ready when the postmaster writes "ready" as the status line of its pid file (what pg_ctl -w
      // waits for). A slow start is waited for: the limit is for a server that hangs.
      const deadline = Date.now() + START_LIMIT_MS
      let ready = false
      while (!ready && child.exitCode === null && child.signalCode === null && Date.now() < deadline) {
        await sleep(20)
        try {
          const lines = fs.readFileSync(pidFile, "utf8").split("\n")
          postmasterPid = Number(lines[0])
          ready = lines[7]?.trim() === "ready"
        } catch {}
      }
      if (ready)
        return { url: `postgres://postgres@127.0.0.1:${port}/postgres`, port, dir, postmasterPid, stop }
      const hung = child.exitCode === null && child.signalCode === null
      await kill()
      const text = fs.existsSync(logFile) ? fs.readFileSync(logFile, "utf8") : ""
      if (hung)
        throw new PostgresHung(
          `the PostgreSQL server was not ready in ${START_LIMIT_MS / 1000} s: ${text.trim().split("\n").slice(-3).join(" | ") || "no log"}`,
        )
      // Someone took the port between our probe and the server's bind: try another one.
      if (attempt < 3 && /could not bind|Address already in use/.test(text)) continue
      throw new Error(
        `the PostgreSQL server did not start: ${text.trim().split("\n").slice(-3).join(" | ") || "no log"}`,
      )
    }
  } catch (cause) {
    await stop()
    throw cause
  }
}

/**
 * The server the PostgreSQL tests use, or undefined (they skip) when there is none; with
 * INTERLEAVE_REQUIRE_PG=1 a missing server throws instead.
 */
export const testPostgresUrl = (): string | undefined => {
  const url = process.env[PG_URL_ENV]
  if (url !== undefined && url !== "") return url
  if (process.env[PG_REQUIRE_ENV] === "1") {
    throw new Error(
      `no PostgreSQL server for the tests (${process.env[PG_SKIP_ENV] ?? `${PG_URL_ENV} is not set`}) ` +
        `and ${PG_REQUIRE_ENV}=1`,
    )
  }
  return undefined
}

/** Why the PostgreSQL tests skip, for their titles. */
export const postgresSkipReason = (): string =>
  process.env[PG_SKIP_ENV] ?? `${PG_URL_ENV} is not set (vitest's global setup starts a server)`

/** `url` with its database replaced by `database`. */
export const withDatabase = (url: string, database: string): string => {
  const u = new URL(url)
  u.pathname = `/${database}`
  return u.toString()
}

/** Runs SQL statements on the server at `url`, one after the other. */
export const runSql = (url: string, statements: ReadonlyArray<string>): Promise<ReadonlyArray<unknown>> =>
  Effect.runPromise(
    Effect.scoped(
      Effect.gen(function* () {
        const sql = yield* PgClient.make({ url: Redacted.make(url), maxConnections: 1 })
        const results: Array<unknown> = []
        for (const s of statements) results.push(yield* sql.unsafe(s))
        return results
      }),
    ).pipe(Effect.provideServiceEffect(Reactivity.Reactivity, Reactivity.make)),
  )

let databases = 0

/** Creates a database of its own (named after `prefix`) on the server at `url`; returns its URL. */
export const createDatabase = async (url: string, prefix: string): Promise<string> => {
  const name = `${prefix.replace(/[^a-z0-9_]/gi, "_").toLowerCase()}_${process.pid}_${databases++}`
  await runSql(url, [`CREATE DATABASE "${name}"`])
  return withDatabase(url, name)
}
