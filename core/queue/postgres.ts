/**
 * PostgreSQL SweepQueue: a claim table of our own, in the event store's schema and on the event
 * store's connection pool (see README, "Many machines", for why not pg-boss or graphile-worker).
 *
 * Tables (next to `streams` and `events`):
 *   queue_sweeps   (sweep_key PK, name, hash, source, config_count, created_at)
 *   queue_configs  (sweep_key, config_id) PK, position, state, attempts, run_id, lease_owner,
 *                  lease_expires_at: one row per configuration, the lease on it
 *   queue_attempts (sweep_key, config_id, attempt) PK, run_id, worker (JSON), claimed_at,
 *                  ended_at, outcome, device, note: every attempt ever claimed, kept
 *
 * A claim is one transaction: it locks the first claimable row in sweep order,
 *   SELECT ... FROM queue_configs WHERE sweep_key = $1 AND (state = 'pending' OR
 *     (state = 'running' AND lease_expires_at < now)) ORDER BY position LIMIT 1 FOR UPDATE SKIP LOCKED
 * so concurrent claimers skip each other's rows instead of waiting, and no two get the same one.
 * For an expired lease, the caller's `reclaim` then runs inside the same transaction, on the same
 * connection (the event store shares this pool, and @effect/sql routes every statement of a
 * transaction to its connection): it appends RunInterrupted to the dead attempt's run with the
 * engine's optimistic version check, so the run's marking and the new attempt commit together or
 * not at all. Then the row becomes the new attempt (attempts + 1, a new run id, the lease) and the
 * attempt is inserted into queue_attempts.
 *
 * Times (claimed_at, lease_expires_at, ...) are the server's clock (clock_timestamp(), ms), so
 * workers on machines whose clocks disagree still agree on when a lease expires. Renew, complete
 * and fail are single conditional UPDATEs on (sweep_key, config_id, attempts, lease_owner): a
 * worker whose attempt was taken over changes nothing and learns it from the row count.
 */
import * as Reactivity from "@effect/experimental/Reactivity"
import type { SqlClient } from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import * as PgClient from "@effect/sql-pg/PgClient"
import { Context, Duration, Effect, Layer, Redacted, type Scope } from "effect"
import { EventStore, type EventStoreShape, StoreError } from "../store/event-store.ts"
import {
  causeMessage,
  DEFAULT_PG_SCHEMA,
  makePostgresEventStore,
  pgKind,
  redactUrl,
} from "../store/postgres.ts"
import {
  type AttemptOutcome,
  type AttemptRecord,
  type Claim,
  type ClaimOptions,
  type ConfigRow,
  type ConfigState,
  QueueError,
  type SweepEntry,
  SweepQueue,
  type SweepQueueShape,
  type SweepSpec,
  type WorkerInfo,
} from "./sweep-queue.ts"

/** The queue's schema version, recorded in queue_schema (the event store's migrations are its own). */
export const QUEUE_SCHEMA_VERSION = 1

const SETUP = `
  CREATE TABLE {schema}.queue_schema (version integer PRIMARY KEY, applied_at bigint NOT NULL);
  CREATE TABLE {schema}.queue_sweeps (
    sweep_key text PRIMARY KEY,
    name text NOT NULL,
    hash text NOT NULL,
    source text NOT NULL,
    config_count integer NOT NULL,
    created_at bigint NOT NULL
  );
  CREATE INDEX queue_sweeps_name ON {schema}.queue_sweeps (name, created_at);
  CREATE TABLE {schema}.queue_configs (
    sweep_key text NOT NULL REFERENCES {schema}.queue_sweeps ON DELETE CASCADE,
    config_id text NOT NULL,
    position integer NOT NULL,
    state text NOT NULL CHECK (state IN ('pending', 'running', 'completed', 'aborted', 'failed')),
    attempts integer NOT NULL DEFAULT 0,
    run_id text,
    lease_owner text,
    lease_expires_at bigint,
    PRIMARY KEY (sweep_key, config_id)
  );
  CREATE INDEX queue_configs_claim ON {schema}.queue_configs (sweep_key, position);
  CREATE TABLE {schema}.queue_attempts (
    sweep_key text NOT NULL,
    config_id text NOT NULL,
    attempt integer NOT NULL,
    run_id text NOT NULL,
    worker text NOT NULL,
    claimed_at bigint NOT NULL,
    ended_at bigint,
    outcome text NOT NULL,
    device text,
    note text,
    PRIMARY KEY (sweep_key, config_id, attempt),
    FOREIGN KEY (sweep_key, config_id) REFERENCES {schema}.queue_configs ON DELETE CASCADE
  )`

/** The server's clock in ms since the epoch (clock_timestamp moves within a transaction, now() does not). */
const NOW_MS = "(extract(epoch from clock_timestamp()) * 1000)::bigint"

const num = (v: string | number | null): number | undefined => (v === null ? undefined : Number(v))

interface ConfigDbRow {
  config_id: string
  position: number
  state: ConfigState
  attempts: number
  run_id: string | null
  lease_owner: string | null
  lease_expires_at: string | null
}

interface AttemptDbRow {
  config_id: string
  attempt: number
  run_id: string
  worker: string
  claimed_at: string
  ended_at: string | null
  outcome: AttemptOutcome
  device: string | null
  note: string | null
}

interface SweepDbRow {
  sweep_key: string
  name: string
  hash: string
  source: string
  config_count: number
  created_at: string
}

const configRow = (r: ConfigDbRow): ConfigRow => ({
  configId: r.config_id,
  position: r.position,
  state: r.state,
  attempts: r.attempts,
  runId: r.run_id ?? undefined,
  leaseOwner: r.lease_owner ?? undefined,
  leaseExpiresAt: num(r.lease_expires_at),
})

const attemptRow = (r: AttemptDbRow): AttemptRecord => ({
  configId: r.config_id,
  attempt: r.attempt,
  runId: r.run_id,
  worker: JSON.parse(r.worker) as WorkerInfo,
  claimedAt: Number(r.claimed_at),
  endedAt: num(r.ended_at),
  outcome: r.outcome,
  device: r.device ?? undefined,
  note: r.note ?? undefined,
})

const sweepRow = (r: SweepDbRow): SweepEntry => ({
  key: r.sweep_key,
  name: r.name,
  hash: r.hash,
  source: r.source,
  configCount: r.config_count,
  createdAt: Number(r.created_at),
})

const messageOf = (cause: unknown): string => {
  const inner = (cause as { cause?: unknown } | null)?.cause ?? cause
  return (inner instanceof Error ? inner.message : String(inner)).replace(/\s+/g, " ").trim()
}

/**
 * The queue on `sql`, in `schema` (created by the event store first), its tables set up if
 * missing. `where` names the server in messages (without a password).
 */
export const makePostgresSweepQueue = (
  sql: SqlClient,
  options: { readonly schema: string; readonly where: string },
): Effect.Effect<SweepQueueShape, QueueError> =>
  Effect.gen(function* () {
    const q = `"${options.schema}"`
    const fail =
      (what: string) =>
      (cause: SqlError): Effect.Effect<never, QueueError> =>
        Effect.fail(
          new QueueError({
            message: `${what} (PostgreSQL at ${options.where}): ${messageOf(cause)}`,
            kind: pgKind(cause),
            cause,
          }),
        )
    /** SqlErrors (and a failed COMMIT, which @effect/sql raises as a defect) as QueueErrors. */
    const guard =
      (what: string) =>
      <A, E>(eff: Effect.Effect<A, E | SqlError>): Effect.Effect<A, Exclude<E, SqlError> | QueueError> =>
        eff.pipe(
          Effect.catchIf(
            (e): e is SqlError => (e as { _tag?: string })._tag === "SqlError",
            (e) => fail(what)(e as SqlError),
          ),
          Effect.catchAllDefect((cause) => fail(what)(cause as SqlError)),
        ) as Effect.Effect<A, Exclude<E, SqlError> | QueueError>

    const setUp = Effect.gen(function* () {
      yield* sql.unsafe("SELECT pg_advisory_xact_lock(hashtext('interleave:queue'), hashtext($1))", [
        options.schema,
      ])
      const found = yield* sql.unsafe<{ t: string | null }>("SELECT to_regclass($1) AS t", [
        `${q}.queue_schema`,
      ])
      if (found[0]?.t !== null && found[0]?.t !== undefined) {
        const v = yield* sql.unsafe<{ v: number | null }>(`SELECT MAX(version) AS v FROM ${q}.queue_schema`)
        const version = v[0]?.v ?? 0
        if (version > QUEUE_SCHEMA_VERSION)
          return yield* new QueueError({
            message: `the sweep queue in schema ${options.schema} of ${options.where} was written by a newer interleave (queue schema ${version}, this build knows ${QUEUE_SCHEMA_VERSION}); upgrade interleave to use it`,
            kind: "bad-input",
          })
        return
      }
      for (const statement of SETUP.replaceAll("{schema}", q).split(";"))
        if (statement.trim() !== "") yield* sql.unsafe(statement)
      yield* sql.unsafe(`INSERT INTO ${q}.queue_schema (version, applied_at) VALUES ($1, ${NOW_MS})`, [
        QUEUE_SCHEMA_VERSION,
      ])
    })
    yield* guard(`cannot set up the sweep queue in schema ${options.schema}`)(sql.withTransaction(setUp))

    const enqueue = (spec: SweepSpec) =>
      guard(`cannot enqueue sweep ${spec.key}`)(
        sql.withTransaction(
          Effect.gen(function* () {
            const inserted = yield* sql.unsafe<{ sweep_key: string }>(
              `INSERT INTO ${q}.queue_sweeps (sweep_key, name, hash, source, config_count, created_at) ` +
                `VALUES ($1, $2, $3, $4, $5, ${NOW_MS}) ON CONFLICT (sweep_key) DO NOTHING RETURNING sweep_key`,
              [spec.key, spec.name, spec.hash, spec.source, spec.configs.length],
            )
            if (inserted.length > 0)
              yield* sql.unsafe(
                `INSERT INTO ${q}.queue_configs (sweep_key, config_id, position, state) ` +
                  "SELECT $1, c.id, c.n - 1, 'pending' FROM unnest($2::text[]) WITH ORDINALITY AS c(id, n)",
                [spec.key, spec.configs],
              )
            const rows = yield* sql.unsafe<SweepDbRow>(
              `SELECT sweep_key, name, hash, source, config_count, created_at FROM ${q}.queue_sweeps WHERE sweep_key = $1`,
              [spec.key],
            )
            return { created: inserted.length > 0, sweep: sweepRow(rows[0]!) }
          }),
        ),
      )

    const sweeps = (name?: string) =>
      guard("cannot list sweeps")(
        sql
          .unsafe<SweepDbRow>(
            `SELECT sweep_key, name, hash, source, config_count, created_at FROM ${q}.queue_sweeps ` +
              "WHERE $1::text IS NULL OR name = $1 ORDER BY created_at DESC, sweep_key",
            [name ?? null],
          )
          .pipe(Effect.map((rows) => rows.map(sweepRow))),
      )

    const attemptsOf = (sweep: string, configId?: string, attempt?: number) =>
      sql
        .unsafe<AttemptDbRow>(
          "SELECT config_id, attempt, run_id, worker, claimed_at, ended_at, outcome, device, note " +
            `FROM ${q}.queue_attempts WHERE sweep_key = $1 AND ($2::text IS NULL OR config_id = $2) ` +
            "AND ($3::integer IS NULL OR attempt = $3) ORDER BY claimed_at, config_id, attempt",
          [sweep, configId ?? null, attempt ?? null],
        )
        .pipe(Effect.map((rows) => rows.map(attemptRow)))

    const endAttempt = (
      sweep: string,
      configId: string,
      attempt: number,
      end: { outcome: AttemptOutcome; device?: string | undefined; note?: string | undefined },
    ) =>
      sql.unsafe(
        `UPDATE ${q}.queue_attempts SET ended_at = ${NOW_MS}, outcome = $4, ` +
          "device = COALESCE($5, device), note = COALESCE($6, note) " +
          "WHERE sweep_key = $1 AND config_id = $2 AND attempt = $3",
        [sweep, configId, attempt, end.outcome, end.device ?? null, end.note ?? null],
      )

    type Step = { readonly _tag: "none" } | { readonly _tag: "again"; readonly skip?: string } | Claim

    /** One claim transaction: a Claim, "none" (nothing claimable), or "again" (look at the next row). */
    const claimOnce = <E>(
      sweep: string,
      worker: WorkerInfo,
      options: ClaimOptions<E>,
      skip: ReadonlyArray<string>,
    ): Effect.Effect<Step, E | SqlError> =>
      sql.withTransaction(
        Effect.gen(function* () {
          const rows = yield* sql.unsafe<ConfigDbRow>(
            "SELECT config_id, position, state, attempts, run_id, lease_owner, lease_expires_at " +
              `FROM ${q}.queue_configs WHERE sweep_key = $1 AND NOT (config_id = ANY($2::text[])) ` +
              `AND (state = 'pending' OR (state = 'running' AND lease_expires_at < ${NOW_MS})) ` +
              "ORDER BY position LIMIT 1 FOR UPDATE SKIP LOCKED",
            [sweep, skip],
          )
          const row = rows[0]
          if (row === undefined) return { _tag: "none" } as const
          const configId = row.config_id
          let previous: AttemptRecord | undefined
          if (row.state === "running") {
            previous = (yield* attemptsOf(sweep, configId, row.attempts))[0]
            const verdict = previous && options.reclaim ? yield* options.reclaim(previous) : undefined
            if (verdict?._tag === "alive") return { _tag: "again", skip: configId } as const
            if (verdict?._tag === "finished") {
              yield* endAttempt(sweep, configId, row.attempts, {
                outcome: verdict.outcome,
                note: verdict.note,
              })
              yield* sql.unsafe(
                `UPDATE ${q}.queue_configs SET state = $3, lease_owner = NULL, lease_expires_at = NULL ` +
                  "WHERE sweep_key = $1 AND config_id = $2",
                [sweep, configId, verdict.outcome],
              )
              return { _tag: "again" } as const
            }
            const note = verdict?.note ?? "its worker lost the lease"
            yield* endAttempt(sweep, configId, row.attempts, { outcome: "lost", note })
            previous = (yield* attemptsOf(sweep, configId, row.attempts))[0]
          }
          const attempt = row.attempts + 1
          const runId = options.runIdOf(configId, attempt)
          const updated = yield* sql.unsafe<{ at: string; expires: string }>(
            `UPDATE ${q}.queue_configs SET state = 'running', attempts = $3, run_id = $4, lease_owner = $5, ` +
              `lease_expires_at = ${NOW_MS} + $6::bigint WHERE sweep_key = $1 AND config_id = $2 ` +
              `RETURNING ${NOW_MS} AS at, lease_expires_at AS expires`,
            [sweep, configId, attempt, runId, worker.id, Math.round(options.leaseMs)],
          )
          yield* sql.unsafe(
            `INSERT INTO ${q}.queue_attempts (sweep_key, config_id, attempt, run_id, worker, claimed_at, outcome) ` +
              "VALUES ($1, $2, $3, $4, $5, $6, 'running')",
            [sweep, configId, attempt, runId, JSON.stringify(worker), updated[0]!.at],
          )
          return {
            sweep,
            configId,
            attempt,
            runId,
            worker,
            leaseExpiresAt: Number(updated[0]!.expires),
            previous,
          } satisfies Claim
        }),
      )

    const claim = <E>(sweep: string, worker: WorkerInfo, options: ClaimOptions<E>) =>
      guard(`cannot claim a configuration of sweep ${sweep}`)(
        Effect.gen(function* () {
          const skip: string[] = []
          for (;;) {
            const step = yield* claimOnce(sweep, worker, options, skip)
            if (!("_tag" in step)) return step
            if (step._tag === "none") return undefined
            if (step.skip !== undefined) skip.push(step.skip)
          }
        }),
      ) as Effect.Effect<Claim | undefined, QueueError | E>

    /** The WHERE that makes an update count only for the configuration's current attempt. */
    const CURRENT =
      "WHERE sweep_key = $1 AND config_id = $2 AND attempts = $3 AND state = 'running' AND lease_owner = $4"
    const currentArgs = (c: Claim) => [c.sweep, c.configId, c.attempt, c.worker.id]

    const renew = (c: Claim, leaseMs: number) =>
      guard(`cannot renew the lease on ${c.configId} of sweep ${c.sweep}`)(
        sql
          .unsafe(
            `UPDATE ${q}.queue_configs SET lease_expires_at = ${NOW_MS} + $5::bigint ${CURRENT} RETURNING 1`,
            [...currentArgs(c), Math.round(leaseMs)],
          )
          .pipe(Effect.map((rows) => rows.length > 0)),
      )

    const finish = (
      c: Claim,
      state: ConfigState,
      end: { outcome: AttemptOutcome; device?: string | undefined; note?: string | undefined },
      what: string,
    ) =>
      guard(`cannot ${what} ${c.configId} of sweep ${c.sweep}`)(
        sql.withTransaction(
          Effect.gen(function* () {
            const r = yield* sql
              .unsafe(
                `UPDATE ${q}.queue_configs SET state = $5, lease_owner = NULL, lease_expires_at = NULL ${CURRENT} RETURNING 1`,
                [...currentArgs(c), state],
              )
              .pipe(Effect.map((rows) => rows.length > 0))
            if (r) yield* endAttempt(c.sweep, c.configId, c.attempt, end)
            return r
          }),
        ),
      )

    const complete: SweepQueueShape["complete"] = (c, result) => finish(c, result.outcome, result, "complete")
    const failAttempt: SweepQueueShape["fail"] = (c, result) =>
      finish(c, result.retry ? "pending" : "failed", result, "release")

    const list = (sweep: string) =>
      guard(`cannot read sweep ${sweep}`)(
        Effect.gen(function* () {
          const s = yield* sql.unsafe<SweepDbRow & { now: string }>(
            `SELECT sweep_key, name, hash, source, config_count, created_at, ${NOW_MS} AS now ` +
              `FROM ${q}.queue_sweeps WHERE sweep_key = $1`,
            [sweep],
          )
          if (s[0] === undefined) return undefined
          const configs = yield* sql.unsafe<ConfigDbRow>(
            "SELECT config_id, position, state, attempts, run_id, lease_owner, lease_expires_at " +
              `FROM ${q}.queue_configs WHERE sweep_key = $1 ORDER BY position`,
            [sweep],
          )
          const attempts = yield* attemptsOf(sweep)
          return {
            sweep: sweepRow(s[0]),
            configs: configs.map(configRow),
            attempts,
            now: Number(s[0].now),
          }
        }),
      )

    return SweepQueue.of({ enqueue, sweeps, claim, renew, complete, fail: failAttempt, list })
  })

/**
 * The event store and the sweep queue on one pool at `url` (postgres://...), in `schema`: what
 * sweep workers open. Both are set up if missing; the pool closes with the scope.
 */
export const makePostgresWorkBackend = (
  url: string,
  options: { readonly schema?: string; readonly maxConnections?: number } = {},
): Effect.Effect<
  { readonly store: EventStoreShape; readonly queue: SweepQueueShape },
  StoreError | QueueError,
  Scope.Scope
> =>
  Effect.gen(function* () {
    const where = redactUrl(url)
    if (!/^postgres(ql)?:\/\//.test(url))
      return yield* new StoreError({
        message: `${where} is not a PostgreSQL URL (postgres://user@host:port/database)`,
      })
    const schema = options.schema ?? DEFAULT_PG_SCHEMA
    const connectError = (cause: unknown) =>
      new StoreError({
        message: `cannot connect to the event store (PostgreSQL at ${where}): ${causeMessage(cause)}`,
        cause,
        kind: pgKind(cause),
      })
    const sql = yield* PgClient.make({
      url: Redacted.make(url),
      maxConnections: options.maxConnections ?? 10,
      connectTimeout: Duration.seconds(10),
      idleTimeout: Duration.seconds(30),
      applicationName: "interleave",
    }).pipe(
      Effect.provideServiceEffect(Reactivity.Reactivity, Reactivity.make),
      Effect.mapError(connectError),
      Effect.catchAllDefect((cause) => Effect.fail(connectError(cause))),
    )
    const store = yield* makePostgresEventStore(url, { schema, client: sql })
    const queue = yield* makePostgresSweepQueue(sql, { schema, where })
    return { store, queue }
  })

/** `makePostgresWorkBackend` as a layer of both services. */
export const PostgresWorkLive = (
  url: string,
  options?: { readonly schema?: string },
): Layer.Layer<EventStore | SweepQueue, StoreError | QueueError> =>
  Layer.scopedContext(
    Effect.map(makePostgresWorkBackend(url, options), ({ store, queue }) =>
      Context.make(EventStore, store).pipe(Context.add(SweepQueue, queue)),
    ),
  )
