/**
 * `interleave ui`'s HTTP server (node:http): the pages, their JSON, the static assets and a live
 * feed of Server-Sent Events. It only reads the store: the runs through core/run's `listRuns`
 * (what `runs --json` prints), a run's steps into a `RunData` (run-data.ts), `verify`'s report
 * through core/run's `verifyLog`. The live feed polls the store for events after the last global
 * position it saw (every POLL_MS) and pushes each subscribed run's progress to its pages.
 */
import { readFileSync } from "node:fs"
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http"
import { createRequire } from "node:module"
import { join, resolve } from "node:path"
import { Chunk, Effect, Runtime, type Scope, Stream } from "effect"
import { InputError, packageRoot } from "../common/index.ts"
import { MEMORY_SOURCES, type RunEvent, type RunStarted, runReport } from "../log/index.ts"
import {
  deviceOf,
  effectiveStatus,
  listRuns,
  readRunEvents,
  verifyLog,
  verifyObservedLog,
} from "../run/index.ts"
import { predicateText } from "../schedule/index.ts"
import { EventStore, type StoredEvent } from "../store/index.ts"
import { type PageKind, pageHtml } from "./pages.ts"
import { RunData, seriesOf, X_AXES, type XAxis } from "./run-data.ts"

export interface UiOptions {
  /** Interface to listen on (default 127.0.0.1: this machine only). */
  readonly host: string
  /** 0: any free port (the server reports the one it got). */
  readonly port: number
  /** The store as messages name it (no password). */
  readonly storeName: string
  /** Sweep results (results.json files) the sweep page may show: only these, never a path from a URL. */
  readonly results?: ReadonlyArray<string>
  /** How often the live feed polls the store, ms (default 250). */
  readonly pollMs?: number
}

export interface UiServer {
  readonly url: string
  readonly host: string
  readonly port: number
}

const POLL_MS = 250
/** Runs kept in memory (a run with a live page open is kept in any case). */
const CACHED_RUNS = 8
/** Events read per poll of the live feed (it polls again at once when a page came back full). */
const LIVE_PAGE = 5_000
/** How often the stores' heartbeats are re-read for the status of runs written on other machines. */
const HEARTBEAT_REFRESH_MS = 2_000

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message)
  }
}

/** The message of a failure from an Effect run as a promise (a FiberFailure wraps the error). */
const messageOf = (e: unknown): string => {
  const m = (e as { message?: unknown } | undefined)?.message
  return typeof m === "string" ? m.replace(/^\(FiberFailure\) \w+: /, "") : String(e)
}

const LOOPBACK = new Set(["127.0.0.1", "localhost", "::1", "[::1]"])

/** uPlot's files, from node_modules; our own from core/ui/assets. Read once, served from memory. */
const assetFiles = (): Record<string, { readonly path: () => string; readonly type: string }> => {
  const require = createRequire(import.meta.url)
  const uplot = (file: string) => () => join(resolve(require.resolve("uplot"), "..", ".."), "dist", file)
  const own = (file: string) => () => join(packageRoot, "core", "ui", "assets", file)
  return {
    "uPlot.iife.min.js": { path: uplot("uPlot.iife.min.js"), type: "text/javascript; charset=utf-8" },
    "uPlot.min.css": { path: uplot("uPlot.min.css"), type: "text/css; charset=utf-8" },
    "app.js": { path: own("app.js"), type: "text/javascript; charset=utf-8" },
    "app.css": { path: own("app.css"), type: "text/css; charset=utf-8" },
  }
}

/** The cycle of a phase as V/T letters (`VVVVVVVVT`), from its ratio, order and offset. */
const cyclePattern = (p: {
  ratio: { visual: number; text: number }
  order?: string
  offset?: number
}): string => {
  const v = p.ratio.visual
  const t = p.ratio.text
  const n = v + t
  if (n === 0) return ""
  let out = ""
  for (let i = 0; i < Math.min(n, 64); i++) {
    const k = (i + (p.offset ?? 0)) % n
    out += (p.order === "text-first" ? k >= t : k < v) ? "V" : "T"
  }
  return out
}

const specPhases = (started: RunStarted | undefined) => {
  const phases = (started?.spec as { phases?: unknown } | null | undefined)?.phases
  if (!Array.isArray(phases)) return []
  let at = 0
  type SpecPhase = {
    name: string
    steps: number
    ratio: { visual: number; text: number }
    order: "visual-first" | "text-first"
    offset?: number
  }
  return (phases as SpecPhase[]).map((p) => {
    const out = {
      name: p.name,
      firstStep: at,
      steps: p.steps,
      ratio: p.ratio,
      pattern: cyclePattern(p),
      predicate: predicateText(p),
    }
    at += p.steps
    return out
  })
}

/** A subscriber of the live feed: one page's EventSource. */
interface Subscriber {
  readonly res: ServerResponse
  /** The run it follows; undefined: the runs list (told which runs changed). */
  readonly runId: string | undefined
  /** The last note of the run it was sent. */
  noteSeq: number
}

export const startUi = (options: UiOptions): Effect.Effect<UiServer, InputError, EventStore | Scope.Scope> =>
  Effect.gen(function* () {
    const store = yield* EventStore
    const runtime = yield* Effect.runtime<never>()
    const run = <A, E>(eff: Effect.Effect<A, E, EventStore>): Promise<A> =>
      Runtime.runPromise(runtime)(Effect.provideService(eff, EventStore, store))
    const pollMs = options.pollMs ?? POLL_MS
    const assets = assetFiles()
    const assetCache = new Map<string, Buffer>()
    const results = new Map<string, string>()
    for (const r of options.results ?? []) results.set(resolve(r), resolve(r))

    // --- runs in memory -------------------------------------------------------------------------
    const cache = new Map<string, { data: RunData; lock: Promise<unknown> }>()
    const subscribers = new Set<Subscriber>()
    const followed = (runId: string) => [...subscribers].some((s) => s.runId === runId)

    /** Runs `f` on a run's data once the work queued before it is done (one writer at a time). */
    const locked = <A>(entry: { lock: Promise<unknown> }, f: () => Promise<A>): Promise<A> => {
      const next = entry.lock.then(f, f)
      entry.lock = next.catch(() => undefined)
      return next
    }

    const catchUp = (entry: { data: RunData; lock: Promise<unknown> }) =>
      locked(entry, () =>
        run(
          store.read(entry.data.runId, { from: entry.data.version }).pipe(
            Stream.runForEachChunk((chunk) =>
              Effect.sync(() => {
                for (const e of chunk) if (e.position === entry.data.version) entry.data.applyStored(e)
              }),
            ),
          ),
        ),
      )

    const verifyCache = new Map<string, { version: number; json: unknown }>()
    /** `verify --log RUN --json`'s shape of a recorded run's report. */
    const verifyShape = (report: Effect.Effect.Success<ReturnType<typeof verifyLog>>) => {
      const { runId: _r, source: _s, ending: _e, events: _n, nothingRecorded, specMismatch, ...rest } = report
      return { ...rest, nothingRecorded, ...(specMismatch !== undefined ? { specMismatch } : {}) }
    }

    /**
     * The first read of a run is also its verification: the events read into the run's data go
     * through core/run's `verifyLog` on the way, so a long run is read once, not twice. (A run
     * that cannot be verified, an observed one say, is read on by `catchUp`.)
     */
    const firstRead = (entry: { data: RunData; lock: Promise<unknown> }) =>
      locked(entry, async () => {
        const data = entry.data
        const events = store.read(data.runId, { from: 0 }).pipe(
          Stream.mapChunks((chunk) => {
            const out: RunEvent[] = []
            for (const e of chunk) if (e.position === data.version) out.push(data.applyStored(e))
            return Chunk.unsafeFromArray(out)
          }),
        )
        const verified = await run(Effect.either(verifyLog(data.runId, events, undefined)))
        if (verified._tag === "Right")
          verifyCache.set(data.runId, { version: data.version, json: verifyShape(verified.right) })
      })

    /** A run's data, read from the store the first time and brought up to date every time. */
    const runData = async (runId: string): Promise<RunData> => {
      let entry = cache.get(runId)
      if (entry) {
        // Most recently used last.
        cache.delete(runId)
        cache.set(runId, entry)
      } else {
        entry = { data: new RunData(runId), lock: Promise.resolve() }
        cache.set(runId, entry)
        verifyCache.delete(runId)
        await firstRead(entry).catch(() => undefined)
        for (const [id] of cache) {
          if (cache.size <= CACHED_RUNS) break
          if (id !== runId && !followed(id)) cache.delete(id)
        }
      }
      try {
        await catchUp(entry)
      } catch (e) {
        cache.delete(runId)
        throw e
      }
      if (entry.data.version === 0) {
        cache.delete(runId)
        throw new HttpError(404, `no run "${runId}" in ${options.storeName}`)
      }
      return entry.data
    }

    // --- liveness ---------------------------------------------------------------------------------
    let heartbeats = new Map<string, number | undefined>()
    let heartbeatsAt = 0
    const refreshHeartbeats = async (force = false) => {
      const now = Date.now()
      if (!force && now - heartbeatsAt < HEARTBEAT_REFRESH_MS) return
      heartbeatsAt = now
      const infos = await run(store.streams())
      heartbeats = new Map(infos.map((i) => [i.stream, i.heartbeatAt]))
    }
    const statusOf = (data: RunData) => {
      const s = data.fold.state()
      return { state: s, status: effectiveStatus(s.status, s.writer, heartbeats.get(data.runId), Date.now()) }
    }

    // --- pages' JSON ------------------------------------------------------------------------------
    const runJson = async (runId: string) => {
      const data = await runData(runId)
      await refreshHeartbeats(true)
      const { state, status } = statusOf(data)
      const st = data.started
      const report = runReport({ ...state, status })
      const extent = (axis: XAxis) =>
        data.n === 0 ? null : [data.xValue(axis, 0), data.xValue(axis, data.n - 1)]
      const scenario = (st?.spec as { name?: unknown } | null | undefined)?.name
      return {
        runId,
        store: options.storeName,
        report,
        scenario: typeof scenario === "string" ? scenario : null,
        device: deviceOf(st),
        adapter: st ? { kind: st.adapter.kind, options: st.adapter.options, info: st.adapter.info } : null,
        engine: st?.engine ?? null,
        observed: st?.observed !== undefined,
        phases: specPhases(st),
        keys: data.keys(),
        memorySources: MEMORY_SOURCES,
        markers: data.markers,
        version: data.version,
        globalPosition: data.lastGlobal,
        stepsRecorded: data.n,
        extent: { step: extent("step"), time: extent("time"), wall: extent("wall") },
      }
    }

    /** What `interleave verify --log RUN --json` prints, from the same core functions. */
    const verifyJson = async (runId: string) => {
      const data = await runData(runId)
      const hit = verifyCache.get(runId)
      if (hit && hit.version === data.version) return hit.json
      let json: unknown
      if (data.started?.observed !== undefined) {
        const r = await run(verifyObservedLog(runId, readRunEvents(runId), undefined))
        json = { observed: true, ...r }
      } else {
        json = verifyShape(await run(verifyLog(runId, readRunEvents(runId), undefined)))
      }
      verifyCache.set(runId, { version: data.version, json })
      return json
    }

    const seriesJson = async (q: URLSearchParams) => {
      const ids = (q.get("runs") ?? "").split(",").filter((s) => s !== "")
      if (ids.length === 0) throw new HttpError(400, "runs: name at least one run")
      if (ids.length > 12) throw new HttpError(400, "runs: at most 12 runs at once")
      const axis = (q.get("x") ?? "step") as XAxis
      if (!X_AXES.includes(axis)) throw new HttpError(400, `x: one of ${X_AXES.join(", ")}`)
      const num = (name: string) => {
        const v = q.get(name)
        if (v === null || v === "") return undefined
        const n = Number(v)
        if (!Number.isFinite(n)) throw new HttpError(400, `${name}: not a number`)
        return n
      }
      const datas = []
      for (const id of ids) datas.push(await runData(id))
      return seriesOf(datas, {
        x: axis,
        from: num("from"),
        to: num("to"),
        buckets: num("buckets") ?? 1000,
        keys: (q.get("keys") ?? "").split(",").filter((s) => s !== ""),
      })
    }

    // --- live feed --------------------------------------------------------------------------------
    let head: number | undefined
    let timer: ReturnType<typeof setTimeout> | undefined
    let pinger: ReturnType<typeof setInterval> | undefined
    let stopped = false

    const existsAfter = async (after: number) =>
      (await run(store.readAll({ after, limit: 1 }).pipe(Stream.runCollect))).length > 0
    /** The store's last global position, by doubling then bisecting on `readAll({ after, limit: 1 })`. */
    const findHead = async (): Promise<number> => {
      if (!(await existsAfter(0))) return 0
      let lo = 0
      let hi = 1
      while (await existsAfter(hi)) {
        lo = hi
        hi *= 2
      }
      while (hi - lo > 1) {
        const mid = Math.floor((lo + hi) / 2)
        if (await existsAfter(mid)) lo = mid
        else hi = mid
      }
      return hi
    }

    const send = (s: Subscriber, message: unknown) => {
      s.res.write(`data: ${JSON.stringify(message)}\n\n`)
    }

    const progressOf = (data: RunData, s: Subscriber) => {
      const { state, status } = statusOf(data)
      const notes = data.notesAfter(s.noteSeq)
      s.noteSeq = data.noteSeq
      return {
        type: "progress",
        runId: data.runId,
        globalPosition: data.lastGlobal,
        version: data.version,
        stepsRecorded: data.n,
        lastStep: state.lastStep,
        plannedSteps: state.plannedSteps,
        status,
        phase: state.phase ?? null,
        lastLoss: state.lastLoss,
        notes,
      }
    }

    const tick = async (): Promise<void> => {
      timer = undefined
      if (stopped || subscribers.size === 0) return
      let full = false
      try {
        head ??= await findHead()
        const events = Array.from(
          await run(store.readAll({ after: head, limit: LIVE_PAGE }).pipe(Stream.runCollect)),
        ) as StoredEvent[]
        full = events.length === LIVE_PAGE
        const changed = new Set<string>()
        for (const e of events) {
          head = Math.max(head, e.globalPosition)
          changed.add(e.stream)
        }
        if (changed.size > 0) await refreshHeartbeats()
        for (const runId of changed) {
          const entry = cache.get(runId)
          if (!entry || !followed(runId)) continue
          const mine = events.filter((e) => e.stream === runId)
          await locked(entry, async () => {
            for (const e of mine) if (e.position === entry.data.version) entry.data.applyStored(e)
          })
          // A gap (events the page read before the feed began, or read past): read the stream.
          await catchUp(entry)
          for (const s of subscribers) if (s.runId === runId) send(s, progressOf(entry.data, s))
        }
        if (changed.size > 0) {
          const message = { type: "runs", changed: [...changed], globalPosition: head }
          for (const s of subscribers) if (s.runId === undefined) send(s, message)
        }
      } catch (e) {
        const message = { type: "error", message: messageOf(e) }
        for (const s of subscribers) send(s, message)
      }
      if (!stopped && subscribers.size > 0) timer = setTimeout(tick, full ? 0 : pollMs)
    }

    const subscribe = async (req: IncomingMessage, res: ServerResponse, runId: string | undefined) => {
      const data = runId === undefined ? undefined : await runData(runId)
      if (data) await refreshHeartbeats(true)
      // The first subscriber starts the feed from the store's head now (catch-up reads cover the rest).
      if (subscribers.size === 0) head = undefined
      res.writeHead(200, {
        "Content-Type": "text/event-stream; charset=utf-8",
        "Cache-Control": "no-store",
        Connection: "keep-alive",
      })
      res.write(`retry: 1000\n\n`)
      const s: Subscriber = { res, runId, noteSeq: 0 }
      subscribers.add(s)
      if (data) send(s, progressOf(data, s))
      req.on("close", () => subscribers.delete(s))
      timer ??= setTimeout(tick, 0)
    }

    // --- HTTP ---------------------------------------------------------------------------------------
    const sendJson = (res: ServerResponse, status: number, body: unknown) => {
      const text = JSON.stringify(body, (_k, v) => (typeof v === "number" && !Number.isFinite(v) ? null : v))
      res.writeHead(status, {
        "Content-Type": "application/json; charset=utf-8",
        "Cache-Control": "no-store",
      })
      res.end(text)
    }
    const sendHtml = (res: ServerResponse, html: string, csp: string) => {
      res.writeHead(200, {
        "Content-Type": "text/html; charset=utf-8",
        "Cache-Control": "no-store",
        "Content-Security-Policy": csp,
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
      })
      res.end(html)
    }
    const APP_CSP =
      "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; connect-src 'self'; frame-ancestors 'none'"

    const page = (res: ServerResponse, kind: PageKind) =>
      sendHtml(res, pageHtml(kind, { store: options.storeName, sweeps: [...results.keys()] }), APP_CSP)

    const handle = async (req: IncomingMessage, res: ServerResponse, bound: string) => {
      // A page of another site must not reach the store through this machine's browser.
      const host = (req.headers.host ?? "").replace(/:\d+$/, "")
      if (LOOPBACK.has(bound) && !LOOPBACK.has(host)) throw new HttpError(403, "host not allowed")
      if (req.method !== "GET" && req.method !== "HEAD") throw new HttpError(405, "only GET")
      const url = new URL(req.url ?? "/", "http://localhost")
      const path = url.pathname
      const q = url.searchParams
      if (path === "/" || path === "/runs") return page(res, "runs")
      if (path.startsWith("/run/")) return page(res, "run")
      if (path === "/compare") return page(res, "compare")
      if (path === "/sweep") {
        const given = q.get("results") ?? (results.size === 1 ? [...results.keys()][0]! : "")
        const file = results.get(resolve(given))
        if (given === "" || file === undefined)
          throw new HttpError(
            404,
            "no such sweep: the sweep page shows only the results given with --results",
          )
        const { sweepPageHtml } = await import("./sweep.ts")
        return sendHtml(
          res,
          await sweepPageHtml(file, options.storeName),
          "default-src 'none'; style-src 'self' 'unsafe-inline'; img-src data:; frame-ancestors 'none'",
        )
      }
      if (path.startsWith("/assets/")) {
        const name = path.slice("/assets/".length)
        const asset = Object.hasOwn(assets, name) ? assets[name] : undefined
        if (!asset) throw new HttpError(404, `no asset ${name}`)
        let body = assetCache.get(name)
        if (!body) {
          body = readFileSync(asset.path())
          assetCache.set(name, body)
        }
        res.writeHead(200, { "Content-Type": asset.type, "Cache-Control": "no-cache" })
        return res.end(body)
      }
      if (path === "/api/runs") return sendJson(res, 200, await run(listRuns))
      if (path === "/api/series") return sendJson(res, 200, await seriesJson(q))
      if (path === "/api/live") return subscribe(req, res, q.get("run") ?? undefined)
      const m = /^\/api\/run\/([^/]+)(\/verify)?$/.exec(path)
      if (m) {
        const runId = decodeURIComponent(m[1]!)
        return sendJson(res, 200, m[2] ? await verifyJson(runId) : await runJson(runId))
      }
      throw new HttpError(404, `no page ${path}`)
    }

    const server: Server = createServer((req, res) => {
      handle(req, res, options.host).catch((e) => {
        const status = e instanceof HttpError ? e.status : /no run "/.test(messageOf(e)) ? 404 : 500
        if (res.headersSent) return res.end()
        sendJson(res, status, { error: messageOf(e) })
      })
    })

    const port = yield* Effect.acquireRelease(
      Effect.async<number, InputError>((resume) => {
        const onError = (e: NodeJS.ErrnoException) =>
          resume(
            Effect.fail(
              new InputError({
                message:
                  e.code === "EADDRINUSE"
                    ? `--port ${options.port}: in use on ${options.host} (another interleave ui?); pick another port, or --port 0 for any free one`
                    : `--host ${options.host} --port ${options.port}: cannot listen: ${e.message}`,
              }),
            ),
          )
        server.once("error", onError)
        server.listen(options.port, options.host, () => {
          server.off("error", onError)
          const a = server.address()
          resume(Effect.succeed(typeof a === "object" && a !== null ? a.port : options.port))
        })
      }),
      () =>
        Effect.async<void>((resume) => {
          stopped = true
          if (timer) clearTimeout(timer)
          if (pinger) clearInterval(pinger)
          for (const s of subscribers) s.res.end()
          subscribers.clear()
          server.close(() => resume(Effect.void))
          server.closeAllConnections()
        }),
    )
    // Keeps idle feeds open through proxies and tells a page the server is still there.
    pinger = setInterval(() => {
      for (const s of subscribers) s.res.write(": ping\n\n")
    }, 15_000)
    pinger.unref()
    const shownHost = options.host.includes(":") ? `[${options.host}]` : options.host
    return { url: `http://${shownHost}:${port}/`, host: options.host, port }
  })
