// interleave ui: the pages, drawn in the browser from the server's JSON with uPlot (served from
// node_modules by the same server). Plain script, no build step. Every chart has its title, its
// axis titles with units and its legend as DOM text; visual is always blue, text always orange.
;(() => {
  const uPlot = window.uPlot
  const COLORS = { visual: "#1f6fb4", text: "#e0701a" }
  const MODALITIES = ["visual", "text"]
  const GROUP_COLORS = ["#2e9e44", "#8e44ad", "#8c564b", "#17a2b8", "#b8a900", "#555555", "#d63384"]
  const RUN_DASH = [[], [9, 5], [2, 4], [12, 4, 2, 4]]
  const RUN_STYLE = ["solid", "dashed", "dotted", "dash-dot"]
  const MARKERS = {
    phase: { color: "#333333", dash: [5, 4], label: "phase boundary" },
    checkpoint: { color: "#2e9e44", dash: [], label: "checkpoint" },
    eval: { color: "#8e44ad", dash: [2, 3], label: "evaluation" },
    failure: { color: "#d62728", dash: [], label: "step failure" },
    violation: { color: "#c2185b", dash: [], label: "verify violation" },
    resume: { color: "#888888", dash: [1, 3], label: "resume / interruption" },
    fork: { color: "#111111", dash: [6, 2, 1, 2], label: "fork point" },
  }
  const X_TITLES = {
    step: "step (global step index)",
    time: "cumulative step time (s)",
    wall: "wall time since the run's first event (s)",
  }
  const Y_AXIS_PX = 78

  // --- small helpers ---------------------------------------------------------------------------
  const el = (tag, attrs, ...children) => {
    const e = document.createElement(tag)
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue
      if (k === "class") e.className = v
      else if (k === "text") e.textContent = v
      else if (k.startsWith("on")) e.addEventListener(k.slice(2), v)
      else if (k === "style") e.setAttribute("style", v)
      else e.setAttribute(k, v === true ? "" : String(v))
    }
    for (const c of children.flat()) {
      if (c === undefined || c === null || c === false) continue
      e.append(c instanceof Node ? c : document.createTextNode(String(c)))
    }
    return e
  }
  /** replaceChildren without the nulls (a section with nothing to show is null). */
  const fill = (parent, ...children) =>
    parent.replaceChildren(...children.flat().filter((c) => c !== null && c !== undefined && c !== false))
  const api = async (path) => {
    const r = await fetch(path)
    const body = await r.json().catch(() => ({ error: r.statusText }))
    if (!r.ok) throw new Error(body.error || `${r.status} ${r.statusText}`)
    return body
  }
  const num = (v, digits = 3) => {
    if (v === null || v === undefined || Number.isNaN(v)) return "–"
    if (v === 0) return "0"
    const a = Math.abs(v)
    if (a >= 1e5 || a < 1e-3) return v.toExponential(2)
    return Number(v.toPrecision(digits)).toLocaleString("en-US", { maximumFractionDigits: 6 })
  }
  /** Axis ticks: 120k, 1.5M for large counts; otherwise as num. */
  const tick = (v) => {
    if (v === null || v === undefined) return ""
    const a = Math.abs(v)
    if (a >= 1e6) return `${Number((v / 1e6).toPrecision(3))}M`
    if (a >= 1e4) return `${Number((v / 1e3).toPrecision(4))}k`
    return num(v)
  }
  const int = (v) => (v === null || v === undefined ? "–" : Math.round(v).toLocaleString("en-US"))
  const BYTE_UNITS = [
    ["GiB", 1024 ** 3],
    ["MiB", 1024 ** 2],
    ["KiB", 1024],
    ["bytes", 1],
  ]
  const byteUnit = (max) => BYTE_UNITS.find(([, f]) => max >= f) || BYTE_UNITS[3]
  const statusBadge = (status) => el("span", { class: `status status-${status}`, text: status })
  const runLink = (id) => el("a", { href: `/run/${encodeURIComponent(id)}` }, id)
  const app = document.getElementById("app")
  const fail = (where, e) => {
    app.prepend(el("p", { class: "error", role: "alert" }, `${where}: ${e.message || e}`))
  }
  const throttle = (fn, ms) => {
    let last = 0
    let timer
    let running = false
    let again = false
    const go = async () => {
      timer = undefined
      if (running) {
        again = true
        return
      }
      running = true
      last = Date.now()
      try {
        await fn()
      } finally {
        running = false
        if (again) {
          again = false
          schedule()
        }
      }
    }
    const schedule = () => {
      if (timer) return
      timer = setTimeout(go, Math.max(0, ms - (Date.now() - last)))
    }
    return schedule
  }

  // --- charts ------------------------------------------------------------------------------------
  /**
   * A figure: title, y-axis title (with unit), the uPlot canvas, x-axis title, and a legend of its
   * series and markers, all DOM text. `series`: [{ label, color, dash, width }].
   */
  const figure = (id, title, yTitle, xTitle) => {
    const plot = el("div", { class: "plot" })
    const yt = el("div", { class: "y-title" }, el("span", { text: yTitle }))
    const xt = el("div", { class: "x-title", text: xTitle })
    const legend = el("ul", { class: "legend", "aria-label": `${title}: legend` })
    const note = el("p", { class: "chart-note" })
    const fig = el(
      "figure",
      { class: "chart", "data-chart": id },
      el("figcaption", { text: title }),
      note,
      el("div", { class: "chart-body" }, yt, plot),
      xt,
      legend,
    )
    return { fig, plot, yt, xt, legend, note }
  }
  const legendItems = (legend, items) => {
    legend.replaceChildren(
      ...items.map((it) =>
        el(
          "li",
          { class: it.marker ? "marker-item" : "series-item" },
          el("span", {
            class: `swatch${it.marker ? " swatch-marker" : ""}`,
            style: `--c:${it.color};${it.dash?.length ? "border-top-style:dashed;" : ""}`,
          }),
          it.label,
        ),
      ),
    )
  }
  const markerLegend = (markers) =>
    [...new Set(markers.map((m) => m.type))].map((t) => ({
      label: MARKERS[t].label,
      color: MARKERS[t].color,
      dash: MARKERS[t].dash,
      marker: true,
    }))

  const drawMarkers = (u, markers) => {
    const ctx = u.ctx
    const { left, top, width, height } = u.bbox
    const [min, max] = [u.scales.x.min, u.scales.x.max]
    ctx.save()
    ctx.beginPath()
    ctx.rect(left, top, width, height)
    ctx.clip()
    for (const m of markers) {
      if (m.x < min || m.x > max) continue
      const style = MARKERS[m.type]
      const x = Math.round(u.valToPos(m.x, "x", true)) + 0.5
      ctx.strokeStyle = style.color
      ctx.lineWidth = (m.type === "violation" || m.type === "failure" ? 2 : 1) * devicePixelRatio
      ctx.setLineDash(style.dash.map((d) => d * devicePixelRatio))
      ctx.beginPath()
      ctx.moveTo(x, top)
      ctx.lineTo(x, top + height)
      ctx.stroke()
    }
    ctx.restore()
  }

  const plotWidth = (container) => Math.max(280, Math.floor(container.getBoundingClientRect().width))

  /** A uPlot line chart on the shared x range. `view.range()` gives [min, max] of the x axis. */
  const lineChart = (f, view, series, opts = {}) => {
    const width = plotWidth(f.plot)
    const u = new uPlot(
      {
        width,
        height: opts.height || 220,
        scales: {
          x: { time: false, range: () => view.range() },
          y: opts.yRange ? { range: opts.yRange } : {},
        },
        axes: [
          {
            stroke: "#333",
            grid: { stroke: "#eee" },
            ticks: { stroke: "#ccc" },
            values: (_u, vs) => vs.map((v) => tick(v)),
          },
          {
            stroke: "#333",
            size: Y_AXIS_PX,
            grid: { stroke: "#eee" },
            ticks: { stroke: "#ccc" },
            values: (_u, vs) => vs.map((v) => (opts.yFormat ? opts.yFormat(v) : num(v))),
          },
        ],
        series: [
          { label: opts.xLabel || "x", value: (_u, v) => (v === null ? "–" : num(v, 6)) },
          ...series.map((s) => ({
            label: s.label,
            stroke: s.color,
            dash: s.dash || [],
            width: s.width || 1.4,
            spanGaps: true,
            points: { show: opts.points ?? false, size: 5, fill: s.color },
            value: (_u, v) =>
              v === null || v === undefined ? "–" : opts.yFormat ? opts.yFormat(v) : num(v, 4),
          })),
        ],
        legend: { show: true, live: true, mount: (_u, legendEl) => f.xt.after(legendEl) },
        cursor: { drag: { x: true, y: false, setScale: false }, sync: { key: "interleave-x" } },
        hooks: {
          setSelect: [
            (u) => {
              if (u.select.width < 3) return
              const a = u.posToVal(u.select.left, "x")
              const b = u.posToVal(u.select.left + u.select.width, "x")
              u.setSelect({ left: 0, top: 0, width: 0, height: 0 }, false)
              view.zoom(a, b)
            },
          ],
          draw: [(u) => drawMarkers(u, view.markers())],
        },
      },
      [[], ...series.map(() => [])],
      f.plot,
    )
    return u
  }

  /** The schedule strip: one row of V/T cells per run, on the same x range as the charts. */
  const scheduleChart = (f, view, rows) => {
    const rowPx = 26
    const u = new uPlot(
      {
        width: plotWidth(f.plot),
        height: 34 + rows.length * rowPx + 26,
        scales: { x: { time: false, range: () => view.range() }, y: { range: [0, rows.length] } },
        axes: [
          { stroke: "#333", grid: { show: false }, values: (_u, vs) => vs.map((v) => tick(v)) },
          {
            stroke: "#333",
            size: Y_AXIS_PX,
            grid: { show: false },
            ticks: { show: false },
            splits: () => rows.map((_r, i) => rows.length - i - 0.5),
            values: () => rows.map((r) => r.short),
          },
        ],
        series: [{ label: "x" }, { label: "schedule", scale: "y", stroke: "transparent" }],
        legend: { show: false },
        cursor: { drag: { x: true, y: false, setScale: false }, sync: { key: "interleave-x" }, y: false },
        hooks: {
          setSelect: [
            (u) => {
              if (u.select.width < 3) return
              const a = u.posToVal(u.select.left, "x")
              const b = u.posToVal(u.select.left + u.select.width, "x")
              u.setSelect({ left: 0, top: 0, width: 0, height: 0 }, false)
              view.zoom(a, b)
            },
          ],
          draw: [
            (u) => {
              const res = view.result()
              if (!res) return
              const ctx = u.ctx
              const dpr = devicePixelRatio
              ctx.save()
              rows.forEach((row, r) => {
                const sched = res.schedule[row.runId]
                if (!sched) return
                const y0 = u.valToPos(rows.length - r, "y", true) + 3 * dpr
                const h = u.valToPos(rows.length - r - 1, "y", true) - y0 - 3 * dpr
                const n = sched.visual.length
                for (let i = 0; i < n; i++) {
                  const v = sched.visual[i]
                  const t = sched.text[i]
                  if (v + t === 0) continue
                  const xa = res.mode === "raw" ? res.xs[i] - 0.5 : res.from + i * res.bucketWidth
                  const xb = res.mode === "raw" ? res.xs[i] + 0.5 : res.from + (i + 1) * res.bucketWidth
                  const pa = u.valToPos(xa, "x", true)
                  const pb = u.valToPos(xb, "x", true)
                  const gap = pb - pa > 6 * dpr ? dpr : 0
                  const hv = (h * v) / (v + t)
                  ctx.fillStyle = COLORS.visual
                  ctx.fillRect(pa, y0, Math.max(dpr, pb - pa - gap), hv)
                  ctx.fillStyle = COLORS.text
                  ctx.fillRect(pa, y0 + hv, Math.max(dpr, pb - pa - gap), h - hv)
                  if (pb - pa >= 11 * dpr && (v === 0 || t === 0)) {
                    ctx.fillStyle = "#fff"
                    ctx.font = `${11 * dpr}px sans-serif`
                    ctx.textAlign = "center"
                    ctx.textBaseline = "middle"
                    ctx.fillText(v > 0 ? "V" : "T", (pa + pb) / 2, y0 + h / 2)
                  }
                }
              })
              ctx.restore()
              drawMarkers(u, view.markers())
              // Phase names above the strip, at their first step.
              const ctx2 = u.ctx
              ctx2.save()
              ctx2.fillStyle = "#333"
              ctx2.font = `${11 * dpr}px sans-serif`
              ctx2.textBaseline = "bottom"
              for (const p of view.phaseLabels()) {
                if (p.x < u.scales.x.min || p.x > u.scales.x.max) continue
                ctx2.fillText(p.name, u.valToPos(p.x, "x", true) + 3 * dpr, u.bbox.top - 2 * dpr)
              }
              ctx2.restore()
            },
          ],
        },
      },
      [[], []],
      f.plot,
    )
    return u
  }

  /** Keeps a set of charts on one x range, refetching their series at one point per pixel. */
  const makeView = (runIds, axis, opts) => {
    const state = { result: null, from: undefined, to: undefined, axis, charts: [], markers: [], phases: [] }
    const view = {
      state,
      result: () => state.result,
      range: () => {
        const r = state.result
        if (!r) return [0, 1]
        const past =
          state.from === undefined && state.axis === "step"
            ? Math.max(-Infinity, ...state.markers.map((m) => m.x))
            : -Infinity
        if (r.mode === "raw") return [r.from - 0.5, Math.max(r.to + 0.5, past + 0.5)]
        return [r.from, Math.max(r.to === r.from ? r.from + 1 : r.to, past)]
      },
      markers: () => state.markers,
      phaseLabels: () => state.phases,
      zoom: (a, b) => {
        state.from = Math.min(a, b)
        state.to = Math.max(a, b)
        opts.onZoom?.(true)
        view.refresh()
      },
      reset: () => {
        state.from = undefined
        state.to = undefined
        opts.onZoom?.(false)
        view.refresh()
      },
      zoomed: () => state.from !== undefined,
      refresh: async () => {
        const first = state.charts.find((c) => c.u)
        const buckets = first ? Math.max(50, Math.floor(first.u.bbox.width / devicePixelRatio)) : 1000
        const q = new URLSearchParams({
          runs: runIds.join(","),
          x: state.axis,
          buckets: String(buckets),
          keys: opts.keys().join(","),
        })
        if (state.from !== undefined) {
          q.set("from", String(state.from))
          q.set("to", String(state.to))
        }
        const res = await api(`/api/series?${q}`)
        state.result = res
        for (const c of state.charts) c.update(res)
      },
    }
    return view
  }

  const seriesData = (res, cols) => [
    res.xs,
    ...cols.map(([run, key, scale]) => scaleArr(res.series[run]?.[key], scale)),
  ]
  const scaleArr = (a, f) => (!a ? [] : f === 1 || !f ? a : a.map((v) => (v === null ? null : v / f)))
  const seriesMax = (res, cols) => {
    let m = 0
    for (const [run, key] of cols)
      for (const v of res.series[run]?.[key] || []) if (v !== null && v > m) m = v
    return m
  }

  // --- runs list ---------------------------------------------------------------------------------
  const runsPage = async () => {
    document.title = "interleave · runs"
    const search = el("input", {
      type: "search",
      placeholder: "search run, scenario, source",
      "aria-label": "search",
    })
    const status = el(
      "select",
      { "aria-label": "status" },
      el("option", { value: "" }, "any status"),
      ...["running", "interrupted", "completed", "aborted", "observed"].map((s) =>
        el("option", { value: s }, s),
      ),
    )
    const adapter = el("select", { "aria-label": "adapter" }, el("option", { value: "" }, "any adapter"))
    const compare = el("button", { type: "button", disabled: true }, "compare selected")
    const count = el("span", { class: "count" })
    const body = el("tbody")
    const table = el(
      "table",
      { class: "runs" },
      el(
        "thead",
        {},
        el(
          "tr",
          {},
          ...[
            "",
            "run",
            "status",
            "scenario",
            "adapter",
            "device",
            "steps",
            "last loss (visual)",
            "last loss (text)",
            "started (UTC)",
            "source",
          ].map((h) => el("th", { text: h })),
        ),
      ),
      body,
    )
    app.replaceChildren(
      el("h1", { text: "Runs" }),
      el("div", { class: "controls" }, search, status, adapter, compare, count),
      el("div", { class: "table-wrap" }, table),
    )
    let rows = []
    const selected = new Set()
    const render = () => {
      const text = search.value.trim().toLowerCase()
      const shown = rows.filter(
        (r) =>
          (!status.value || r.status === status.value) &&
          (!adapter.value || r.adapter === adapter.value) &&
          (!text || [r.runId, r.scenario, r.source].some((s) => String(s).toLowerCase().includes(text))),
      )
      count.textContent = `${shown.length} of ${rows.length} runs`
      body.replaceChildren(
        ...shown.map((r) =>
          el(
            "tr",
            { "data-run": r.runId },
            el(
              "td",
              {},
              el("input", {
                type: "checkbox",
                "aria-label": `select ${r.runId}`,
                checked: selected.has(r.runId),
                onchange: (e) => {
                  if (e.target.checked) selected.add(r.runId)
                  else selected.delete(r.runId)
                  compare.disabled = selected.size < 2
                },
              }),
            ),
            el(
              "td",
              {},
              runLink(r.runId),
              r.forkOf
                ? el("div", { class: "sub" }, `fork of ${r.forkOf.runId} at ${int(r.forkOf.atStep)}`)
                : null,
            ),
            el("td", {}, statusBadge(r.status)),
            el("td", { text: r.scenario }),
            el("td", { text: r.adapter }),
            el("td", { text: r.device ?? "–" }),
            el("td", { class: "num steps", text: `${int(r.stepsDone)} / ${int(r.steps)}` }),
            el("td", { class: "num", text: num(r.lastLoss?.visual) }),
            el("td", { class: "num", text: num(r.lastLoss?.text) }),
            el("td", { text: r.startedAt.replace("T", " ").replace(/\.\d+Z$/, "") }),
            el("td", { class: "source", text: r.source, title: r.source }),
          ),
        ),
      )
    }
    const load = async () => {
      rows = await api("/api/runs")
      const kinds = [...new Set(rows.map((r) => r.adapter))].sort()
      const current = adapter.value
      adapter.replaceChildren(
        el("option", { value: "" }, "any adapter"),
        ...kinds.map((k) => el("option", { value: k }, k)),
      )
      adapter.value = kinds.includes(current) ? current : ""
      render()
    }
    for (const c of [search, status, adapter]) c.addEventListener("input", render)
    compare.addEventListener("click", () => {
      location.href = `/compare?runs=${[...selected].map(encodeURIComponent).join(",")}`
    })
    await load()
    document.body.dataset.ready = "1"
    const reload = throttle(() => load().catch((e) => fail("runs", e)), 1000)
    const live = new EventSource("/api/live")
    live.onmessage = (m) => {
      const msg = JSON.parse(m.data)
      if (msg.type === "runs") reload()
    }
  }

  // --- one run -----------------------------------------------------------------------------------
  const memoryTitle = (info, source) => info.memorySources[source]?.short || source
  const markersOf = (info, violations) => {
    const out = []
    const mk = info.markers
    for (const p of mk.phases) if (p.step > 0) out.push({ x: p.step - 0.5, type: "phase" })
    for (const c of mk.checkpoints) out.push({ x: c.step, type: "checkpoint" })
    for (const e of mk.evals) out.push({ x: e.step, type: "eval" })
    for (const f of mk.failures) out.push({ x: f.step, type: "failure" })
    for (const r of mk.resumes) out.push({ x: r.fromStep - 0.5, type: "resume" })
    for (const r of mk.interruptions) out.push({ x: r.lastStep + 0.5, type: "resume" })
    if (mk.aborted && mk.aborted.step !== undefined) out.push({ x: mk.aborted.step, type: "failure" })
    for (const v of violations) if (typeof v.step === "number") out.push({ x: v.step, type: "violation" })
    return out
  }

  const runPage = async (runId) => {
    document.title = `interleave · ${runId}`
    let info = await api(`/api/run/${encodeURIComponent(runId)}`)
    let violations = []
    const steps = el("span", { id: "steps", class: "steps" })
    const statusEl = el("span", { id: "status" })
    const liveEl = el("span", { id: "live", class: "live" })
    const phaseEl = el("span", { id: "phase" })
    const lossTerm = el("select", { "aria-label": "loss term", id: "loss-term" })
    const memFigure = el("select", { "aria-label": "memory figure", id: "memory-figure" })
    const reset = el("button", { type: "button", disabled: true }, "full range")
    const hint = el("span", { class: "hint", text: "drag across a chart to zoom in" })
    const verifyBox = el(
      "section",
      { class: "verify", id: "verify" },
      el("h2", { text: "verify" }),
      el("p", { text: "checking…" }),
    )
    const feed = el("ol", { class: "feed", id: "feed" })
    const tables = el("section", { class: "events", id: "events" })
    const head = () => {
      const r = info.report
      steps.textContent = `step ${int(r.lastStep + 1)} of ${int(r.plannedSteps)}`
      statusEl.replaceChildren(statusBadge(r.status))
      liveEl.textContent = r.status === "running" ? "● live" : ""
      phaseEl.textContent = r.phase ? `phase ${r.phase}` : ""
    }
    const fillSelect = (sel, values, labels, preferred) => {
      const cur = sel.value
      sel.replaceChildren(...values.map((v) => el("option", { value: v }, labels ? labels(v) : v)))
      sel.value = values.includes(cur) ? cur : values.includes(preferred) ? preferred : values[0] || ""
    }
    const fillControls = () => {
      fillSelect(lossTerm, info.keys.losses, (t) => `loss term: ${t}`, "total")
      fillSelect(
        memFigure,
        info.keys.memory,
        (m) => `memory: ${memoryTitle(info, m)}`,
        info.report.memory?.source,
      )
    }
    fillControls()
    head()
    const st = info.report
    const meta = el(
      "dl",
      { class: "meta" },
      el("dt", { text: "scenario" }),
      el("dd", { text: `${info.scenario ?? "–"} (${st.source ?? "?"})` }),
      el("dt", { text: "adapter" }),
      el("dd", { text: `${st.adapter.kind}${info.device ? ` on ${info.device}` : ""}` }),
      el("dt", { text: "seed" }),
      el("dd", { text: String(st.seed ?? "–") }),
      st.forkOf ? el("dt", { text: "fork of" }) : null,
      st.forkOf
        ? el(
            "dd",
            {},
            runLink(st.forkOf.runId),
            ` at step ${int(st.forkOf.atStep)} · `,
            el(
              "a",
              { href: `/compare?runs=${encodeURIComponent(st.forkOf.runId)},${encodeURIComponent(runId)}` },
              "compare with it",
            ),
          )
        : null,
      el("dt", { text: "schedule" }),
      el(
        "dd",
        {},
        info.phases.length === 0
          ? "–"
          : info.phases.map((p, i) =>
              el(
                "span",
                { class: "phase-desc" },
                i > 0 ? " → " : "",
                `${p.name}: steps ${int(p.firstStep)}–${int(p.firstStep + p.steps - 1)}, ${p.ratio.visual}:${p.ratio.text} `,
                el("code", { text: p.pattern.length > 24 ? `${p.pattern.slice(0, 24)}…` : p.pattern }),
              ),
            ),
      ),
    )
    const stepTimeKind = st.stepTime.kind
    const figs = {
      schedule: figure("schedule", "Schedule: the modality of every step", "run", X_TITLES.step),
      loss: figure("loss", "Loss per modality", "", X_TITLES.step),
      lr: figure("lr", "Learning rate of every parameter group", "learning rate (unitless)", X_TITLES.step),
      time: figure("time", "Step time per modality", `step time (ms, ${stepTimeKind})`, X_TITLES.step),
      memory: figure("memory", "Memory over steps", "", X_TITLES.step),
      evals: figure("evals", "Evaluations per modality", "metric (as the adapter scores it)", X_TITLES.step),
    }
    figs.schedule.note.textContent =
      "Each cell is a step (blue V: visual, orange T: text); zoomed out, a cell is a pixel's steps, split by their visual:text mix."
    app.replaceChildren(
      el("h1", {}, runId, " ", statusEl, " ", liveEl),
      el("p", { class: "summary" }, steps, " ", phaseEl),
      meta,
      el("div", { class: "controls" }, lossTerm, memFigure, reset, hint),
      el("ul", { class: "legend marker-legend", id: "marker-legend", "aria-label": "markers" }),
      ...Object.values(figs).map((f) => f.fig),
      verifyBox,
      tables,
      el("section", { class: "live-feed" }, el("h2", { text: "live events" }), feed),
    )
    const groups = () => info.keys.lr
    const view = makeView([runId], "step", {
      keys: () => [
        ...MODALITIES.map((m) => `loss:${lossTerm.value}:${m}`),
        ...groups().map((g) => `lr:${g}`),
        ...MODALITIES.map((m) => `time:${m}`),
        ...(memFigure.value ? MODALITIES.map((m) => `mem:${memFigure.value}:${m}`) : []),
      ],
      onZoom: (z) => {
        reset.disabled = !z
      },
    })
    reset.addEventListener("click", () => view.reset())
    const setMarkers = () => {
      view.state.markers = markersOf(info, violations)
      view.state.phases = info.markers.phases.map((p) => ({ x: p.step - 0.5, name: p.phase }))
      document.getElementById("marker-legend").replaceChildren(
        el("li", { class: "legend-title", text: "on every chart:" }),
        ...Object.entries(MARKERS)
          .filter(([t]) => t !== "fork")
          .map(([, m]) =>
            el(
              "li",
              { class: "marker-item" },
              el("span", {
                class: "swatch swatch-marker",
                style: `--c:${m.color};${m.dash.length ? "border-top-style:dashed;" : ""}`,
              }),
              m.label,
            ),
          ),
      )
    }
    setMarkers()
    const charts = view.state.charts
    // Schedule strip.
    const sched = { u: null }
    sched.u = scheduleChart(figs.schedule, view, [{ runId, short: "V/T" }])
    legendItems(figs.schedule.legend, [
      { label: "V: visual step", color: COLORS.visual },
      { label: "T: text step", color: COLORS.text },
      { label: "phase boundary (name above)", color: MARKERS.phase.color, dash: [1], marker: true },
    ])
    sched.update = () => sched.u.setData([view.range(), [null, null]])
    charts.push(sched)
    // Loss.
    const loss = {
      u: lineChart(
        figs.loss,
        view,
        MODALITIES.map((m) => ({ label: `${m} steps`, color: COLORS[m] })),
        { xLabel: "step" },
      ),
    }
    loss.update = (res) => {
      const t = lossTerm.value
      figs.loss.yt.firstChild.textContent = `loss: ${t} (unitless)`
      figs.loss.fig.querySelector("figcaption").textContent = `Loss per modality: ${t}`
      loss.u.setData(
        seriesData(
          res,
          MODALITIES.map((m) => [runId, `loss:${t}:${m}`]),
        ),
      )
      legendItems(figs.loss.legend, [
        ...MODALITIES.map((m) => ({ label: `${m} steps (${t})`, color: COLORS[m] })),
        ...markerLegend(view.markers()),
      ])
    }
    charts.push(loss)
    // lr: one line per group; rebuilt if the groups change.
    const lr = { u: null, groups: [] }
    lr.update = (res) => {
      const gs = groups()
      if (!lr.u || gs.join() !== lr.groups.join()) {
        lr.u?.destroy()
        lr.groups = gs
        lr.u = lineChart(
          figs.lr,
          view,
          gs.map((g, i) => ({ label: g, color: GROUP_COLORS[i % GROUP_COLORS.length] })),
          { xLabel: "step" },
        )
      }
      lr.u.setData(
        seriesData(
          res,
          gs.map((g) => [runId, `lr:${g}`]),
        ),
      )
      legendItems(figs.lr.legend, [
        ...gs.map((g, i) => ({ label: `group ${g}`, color: GROUP_COLORS[i % GROUP_COLORS.length] })),
        ...markerLegend(view.markers()),
      ])
    }
    figs.lr.note.textContent =
      "Per step, with warm-up, decay and any per-modality factor applied (min and max per pixel)."
    charts.push(lr)
    // Step time.
    const time = {
      u: lineChart(
        figs.time,
        view,
        MODALITIES.map((m) => ({ label: `${m} steps`, color: COLORS[m] })),
        { xLabel: "step" },
      ),
    }
    time.update = (res) => {
      time.u.setData(
        seriesData(
          res,
          MODALITIES.map((m) => [runId, `time:${m}`]),
        ),
      )
      legendItems(figs.time.legend, [
        ...MODALITIES.map((m) => ({ label: `${m} steps`, color: COLORS[m] })),
        ...markerLegend(view.markers()),
      ])
    }
    charts.push(time)
    // Memory.
    const mem = { u: null, unit: null }
    mem.update = (res) => {
      const src = memFigure.value
      if (!src) {
        figs.memory.note.textContent = "No step carried a memory figure."
        return
      }
      const cols = MODALITIES.map((m) => [runId, `mem:${src}:${m}`])
      const [unit, factor] = byteUnit(seriesMax(res, cols))
      if (!mem.u || mem.unit !== unit) {
        mem.u?.destroy()
        mem.unit = unit
        mem.u = lineChart(
          figs.memory,
          view,
          MODALITIES.map((m) => ({ label: `${m} steps`, color: COLORS[m] })),
          {
            xLabel: "step",
          },
        )
      }
      const name = memoryTitle(info, src)
      figs.memory.yt.firstChild.textContent = `memory: ${name} (${unit})`
      figs.memory.fig.querySelector("figcaption").textContent = `Memory over steps: ${name}`
      figs.memory.note.textContent = `${info.memorySources[src]?.long || src}${
        info.report.memory?.source === src ? " (the figure `show` reports)" : ""
      }${info.report.adapter.kind === "sim" ? "; simulated" : ""}. Visual and text steps apart, so their swing shows.`
      mem.u.setData(
        seriesData(
          res,
          cols.map((c) => [...c, factor]),
        ),
      )
      legendItems(figs.memory.legend, [
        ...MODALITIES.map((m) => ({ label: `${m} steps (${name})`, color: COLORS[m] })),
        ...markerLegend(view.markers()),
      ])
    }
    charts.push(mem)
    // Evaluations: their own points, on the same x range.
    const ev = { u: null }
    ev.update = () => {
      const evals = info.markers.evals
      if (evals.length === 0) {
        figs.evals.note.textContent = "No evaluations recorded (run with --eval-every K)."
        figs.evals.fig.classList.add("empty")
        legendItems(figs.evals.legend, [])
        ev.u?.destroy()
        ev.u = null
        return
      }
      figs.evals.fig.classList.remove("empty")
      const metric = evals[evals.length - 1].metric
      figs.evals.yt.firstChild.textContent = `${metric} (as the adapter scores it)`
      figs.evals.note.textContent = `Held-out ${metric} after the step it follows; chance is what a prompt-blind predictor scores.`
      if (!ev.u)
        ev.u = lineChart(
          figs.evals,
          view,
          [
            ...MODALITIES.map((m) => ({ label: m, color: COLORS[m], width: 1.8 })),
            { label: "chance", color: "#777", dash: [4, 4] },
          ],
          { xLabel: "step", points: true },
        )
      ev.u.setData([
        evals.map((e) => e.step),
        ...MODALITIES.map((m) => evals.map((e) => e.values[m])),
        evals.map((e) => (e.chance === undefined ? null : e.chance)),
      ])
      legendItems(figs.evals.legend, [
        ...MODALITIES.map((m) => ({ label: `${m} prompts`, color: COLORS[m] })),
        { label: "chance", color: "#777", dash: [4] },
      ])
    }
    charts.push(ev)

    const eventTables = () => {
      const mk = info.markers
      const section = (title, head, rows) =>
        rows.length === 0
          ? null
          : el(
              "div",
              { class: "event-table" },
              el("h3", { text: `${title} (${rows.length})` }),
              el(
                "table",
                {},
                el("thead", {}, el("tr", {}, ...head.map((h) => el("th", { text: h })))),
                el("tbody", {}, ...rows),
              ),
            )
      const stepCell = (s) =>
        el(
          "td",
          { class: "num" },
          el(
            "a",
            {
              href: "#",
              onclick: (e) => {
                e.preventDefault()
                view.zoom(s - 50, s + 50)
              },
            },
            int(s),
          ),
        )
      fill(
        tables,
        el("h2", { text: "events on the step axis" }),
        section(
          "evaluations",
          ["step", "metric", "visual", "text", "chance"],
          mk.evals.map((e) =>
            el(
              "tr",
              {},
              stepCell(e.step),
              el("td", { text: e.metric }),
              el("td", { class: "num", text: num(e.values.visual) }),
              el("td", { class: "num", text: num(e.values.text) }),
              el("td", { class: "num", text: num(e.chance) }),
            ),
          ),
        ),
        section(
          "checkpoints",
          ["step", "file"],
          mk.checkpoints.map((c) => el("tr", {}, stepCell(c.step), el("td", { text: c.file }))),
        ),
        section(
          "failures",
          ["step", "modality", "kind", "message"],
          mk.failures.map((f) =>
            el(
              "tr",
              { class: "failure" },
              stepCell(f.step),
              el("td", { text: f.modality }),
              el("td", { text: f.kind }),
              el("td", { text: f.message }),
            ),
          ),
        ),
        section(
          "phases",
          ["first step", "phase"],
          mk.phases.map((p) => el("tr", {}, stepCell(p.step), el("td", { text: p.phase }))),
        ),
        mk.aborted
          ? el(
              "p",
              { class: "error" },
              `aborted${mk.aborted.step !== undefined ? ` at step ${int(mk.aborted.step)}` : ""}: ${mk.aborted.reason}`,
            )
          : null,
      )
    }

    const renderVerify = (v) => {
      if (v.observed) {
        fill(
          verifyBox,
          el("h2", { text: "verify" }),
          el("p", { text: `observed run: ${v.ok ? "PASS" : "FAIL"} (what its log lets us check)` }),
        )
        return
      }
      violations = v.violations || []
      const rules = v.rulesChecked || []
      const failed = rules.filter((r) => (v.violationCounts?.[r] || 0) > 0)
      fill(
        verifyBox,
        el("h2", { text: "verify (as interleave verify --log RUN)" }),
        el(
          "p",
          { class: v.ok ? "pass" : "fail", id: "verify-result" },
          v.ok
            ? `PASS: all ${rules.length} rules hold over ${int(v.steps)} steps`
            : v.nothingRecorded && v.violationTotal === 0
              ? "FAIL: nothing recorded (no completed step)"
              : `FAIL: ${int(v.violationTotal)} violations of ${failed.length} rules`,
        ),
        el("p", { class: "rules", text: `rules: ${rules.join(", ")}` }),
        violations.length === 0
          ? null
          : el(
              "ol",
              { class: "violations" },
              ...violations.map((x) =>
                el(
                  "li",
                  {},
                  typeof x.step === "number"
                    ? el(
                        "a",
                        {
                          href: "#",
                          onclick: (e) => {
                            e.preventDefault()
                            view.zoom(x.step - 50, x.step + 50)
                          },
                        },
                        `step ${int(x.step)}`,
                      )
                    : `position ${x.position}`,
                  ` [${x.rule}] ${x.message}`,
                ),
              ),
            ),
      )
      setMarkers()
      for (const c of charts) c.u?.redraw()
    }
    const verify = async () => {
      try {
        renderVerify(await api(`/api/run/${encodeURIComponent(runId)}/verify`))
      } catch (e) {
        fill(verifyBox, el("h2", { text: "verify" }), el("p", { class: "error", text: e.message }))
      }
    }

    const t0 = performance.now()
    await view.refresh()
    ev.update()
    eventTables()
    const drawnMs = performance.now() - t0
    document.body.dataset.drawn = "1"
    document.body.dataset.drawMs = String(Math.round(drawnMs))
    verify()

    lossTerm.addEventListener("change", () => view.refresh())
    memFigure.addEventListener("change", () => view.refresh())
    let width = window.innerWidth
    window.addEventListener(
      "resize",
      throttle(async () => {
        if (window.innerWidth === width) return
        width = window.innerWidth
        for (const c of charts)
          if (c.u) c.u.setSize({ width: plotWidth(c.u.root.parentElement), height: c.u.height })
        await view.refresh()
      }, 300),
    )

    // Live: the server pushes the run's progress as the store grows.
    let lastStatus = info.report.status
    const refreshAll = throttle(async () => {
      info = await api(`/api/run/${encodeURIComponent(runId)}`)
      fillControls()
      setMarkers()
      await view.refresh()
      ev.update()
      eventTables()
      head()
      if (info.report.status !== lastStatus) {
        lastStatus = info.report.status
        verify()
      }
    }, 1000)
    const live = new EventSource(`/api/live?run=${encodeURIComponent(runId)}`)
    live.onmessage = (m) => {
      const msg = JSON.parse(m.data)
      if (msg.type !== "progress") return
      info.report = {
        ...info.report,
        status: msg.status,
        lastStep: msg.lastStep,
        plannedSteps: msg.plannedSteps,
        phase: msg.phase,
      }
      head()
      document.body.dataset.globalPosition = String(msg.globalPosition)
      for (const n of msg.notes)
        feed.prepend(
          el(
            "li",
            { class: `note note-${n.type}` },
            n.step !== undefined ? `step ${int(n.step)}: ` : "",
            n.text,
          ),
        )
      while (feed.childElementCount > 50) feed.lastElementChild.remove()
      if (msg.version !== info.version) refreshAll()
    }
  }

  // --- compare -----------------------------------------------------------------------------------
  const comparePage = async (runIds) => {
    document.title = `interleave · compare ${runIds.join(", ")}`
    if (runIds.length < 2) {
      app.replaceChildren(
        el("h1", { text: "Compare" }),
        el("p", { text: "Pick two or more runs on the runs page." }),
      )
      return
    }
    const infos = []
    for (const id of runIds) infos.push(await api(`/api/run/${encodeURIComponent(id)}`))
    const axisSel = el(
      "select",
      { "aria-label": "x axis", id: "x-axis" },
      ...Object.entries(X_TITLES).map(([k, t]) => el("option", { value: k }, `x: ${t}`)),
    )
    const terms = [...new Set(infos.flatMap((i) => i.keys.losses))]
    const mems = [...new Set(infos.flatMap((i) => i.keys.memory))]
    const groupsAll = [...new Set(infos.flatMap((i) => i.keys.lr))]
    const lossTerm = el(
      "select",
      { "aria-label": "loss term" },
      ...terms.map((t) => el("option", { value: t }, `loss term: ${t}`)),
    )
    lossTerm.value = terms.includes("total") ? "total" : terms[0] || ""
    const memFigure = el(
      "select",
      { "aria-label": "memory figure" },
      ...mems.map((m) => el("option", { value: m }, `memory: ${infos[0].memorySources[m]?.short || m}`)),
    )
    const pref = infos[0].report.memory?.source
    if (pref && mems.includes(pref)) memFigure.value = pref
    const reset = el("button", { type: "button", disabled: true }, "full range")
    const runsLegend = el(
      "ul",
      { class: "legend runs-legend", "aria-label": "runs" },
      ...infos.map((inf, i) =>
        el(
          "li",
          {},
          el("span", {
            class: "swatch",
            style: `--c:#333;border-top-style:${["solid", "dashed", "dotted", "dashed"][i % 4]}`,
          }),
          `${RUN_STYLE[i % RUN_STYLE.length]} line: `,
          runLink(inf.runId),
          ` (${inf.report.status}, ${int(inf.report.lastStep + 1)} steps${inf.report.forkOf ? `, fork of ${inf.report.forkOf.runId} at ${int(inf.report.forkOf.atStep)}` : ""})`,
        ),
      ),
    )
    const short = (i) => `run ${String.fromCharCode(65 + i)}`
    const figs = {
      schedule: figure("schedule", "Schedule of each run", "run", X_TITLES.step),
      loss: figure("loss", "Loss per modality", "loss (unitless)", X_TITLES.step),
      time: figure("time", "Step time per modality", "step time (ms)", X_TITLES.step),
      memory: figure("memory", "Memory over steps", "memory", X_TITLES.step),
      lr: figure("lr", "Learning rate of every parameter group", "learning rate (unitless)", X_TITLES.step),
    }
    app.replaceChildren(
      el("h1", { text: `Compare ${runIds.length} runs` }),
      runsLegend,
      el(
        "div",
        { class: "controls" },
        axisSel,
        lossTerm,
        memFigure,
        reset,
        el("span", { class: "hint", text: "drag across a chart to zoom in" }),
      ),
      ...Object.values(figs).map((f) => f.fig),
    )
    const view = makeView(runIds, "step", {
      keys: () => [
        ...MODALITIES.map((m) => `loss:${lossTerm.value}:${m}`),
        ...MODALITIES.map((m) => `time:${m}`),
        ...(memFigure.value ? MODALITIES.map((m) => `mem:${memFigure.value}:${m}`) : []),
        ...groupsAll.map((g) => `lr:${g}`),
      ],
      onZoom: (z) => {
        reset.disabled = !z
      },
    })
    const setMarkers = () => {
      view.state.markers =
        view.state.axis === "step"
          ? infos.flatMap((inf) =>
              inf.report.forkOf ? [{ x: inf.report.forkOf.atStep - 0.5, type: "fork" }] : [],
            )
          : []
    }
    setMarkers()
    reset.addEventListener("click", () => view.reset())
    const charts = view.state.charts
    const perRun = (fn) => infos.flatMap((inf, i) => fn(inf, i))
    const sched = {
      u: scheduleChart(
        figs.schedule,
        view,
        infos.map((inf, i) => ({ runId: inf.runId, short: short(i) })),
      ),
    }
    sched.update = () => sched.u.setData([view.range(), [null, null]])
    charts.push(sched)
    const modalSeries = (what) =>
      perRun((_inf, i) =>
        MODALITIES.map((m) => ({
          label: `${short(i)} ${m}${what}`,
          color: COLORS[m],
          dash: RUN_DASH[i % RUN_DASH.length],
        })),
      )
    const legendFor = (f, what) =>
      legendItems(f.legend, [
        ...perRun((_inf, i) =>
          MODALITIES.map((m) => ({
            label: `${short(i)} (${RUN_STYLE[i % RUN_STYLE.length]}): ${m} steps${what}`,
            color: COLORS[m],
            dash: RUN_DASH[i % RUN_DASH.length],
          })),
        ),
        ...markerLegend(view.markers()),
      ])
    const simple = (key, f, what, ylabel) => {
      const c = { u: lineChart(f, view, modalSeries(what), { xLabel: view.state.axis }) }
      c.update = (res) => {
        f.xt.textContent = X_TITLES[view.state.axis]
        if (ylabel) f.yt.firstChild.textContent = ylabel()
        c.u.setData(
          seriesData(
            res,
            perRun((inf) => MODALITIES.map((m) => [inf.runId, key(m)])),
          ),
        )
        legendFor(f, typeof what === "function" ? what() : what)
      }
      return c
    }
    charts.push(
      simple(
        (m) => `loss:${lossTerm.value}:${m}`,
        figs.loss,
        "",
        () => `loss: ${lossTerm.value} (unitless)`,
      ),
    )
    const kinds = [...new Set(infos.map((i) => i.report.stepTime.kind))].join(" / ")
    charts.push(
      simple(
        (m) => `time:${m}`,
        figs.time,
        "",
        () => `step time (ms, ${kinds})`,
      ),
    )
    const mem = { u: null, unit: null }
    mem.update = (res) => {
      const src = memFigure.value
      figs.memory.xt.textContent = X_TITLES[view.state.axis]
      if (!src) return
      const cols = perRun((inf) => MODALITIES.map((m) => [inf.runId, `mem:${src}:${m}`]))
      const [unit, factor] = byteUnit(seriesMax(res, cols))
      if (!mem.u || mem.unit !== unit) {
        mem.u?.destroy()
        mem.unit = unit
        mem.u = lineChart(figs.memory, view, modalSeries(""), { xLabel: view.state.axis })
      }
      const name = infos[0].memorySources[src]?.short || src
      figs.memory.yt.firstChild.textContent = `memory: ${name} (${unit})`
      mem.u.setData(
        seriesData(
          res,
          cols.map((c) => [...c, factor]),
        ),
      )
      legendFor(figs.memory, ` (${name})`)
    }
    charts.push(mem)
    const lr = {
      u: lineChart(
        figs.lr,
        view,
        perRun((_inf, i) =>
          groupsAll.map((g, k) => ({
            label: `${short(i)} ${g}`,
            color: GROUP_COLORS[k % GROUP_COLORS.length],
            dash: RUN_DASH[i % RUN_DASH.length],
          })),
        ),
        { xLabel: "x" },
      ),
    }
    lr.update = (res) => {
      figs.lr.xt.textContent = X_TITLES[view.state.axis]
      lr.u.setData(
        seriesData(
          res,
          perRun((inf) => groupsAll.map((g) => [inf.runId, `lr:${g}`])),
        ),
      )
      legendItems(figs.lr.legend, [
        ...perRun((_inf, i) =>
          groupsAll.map((g, k) => ({
            label: `${short(i)} (${RUN_STYLE[i % RUN_STYLE.length]}): group ${g}`,
            color: GROUP_COLORS[k % GROUP_COLORS.length],
            dash: RUN_DASH[i % RUN_DASH.length],
          })),
        ),
        ...markerLegend(view.markers()),
      ])
    }
    charts.push(lr)
    const schedUpdate = sched.update
    sched.update = (res) => {
      figs.schedule.xt.textContent = X_TITLES[view.state.axis]
      schedUpdate(res)
    }
    axisSel.addEventListener("change", () => {
      view.state.axis = axisSel.value
      view.state.from = undefined
      view.state.to = undefined
      reset.disabled = true
      setMarkers()
      view.refresh().catch((e) => fail("compare", e))
    })
    lossTerm.addEventListener("change", () => view.refresh())
    memFigure.addEventListener("change", () => view.refresh())
    const t0 = performance.now()
    await view.refresh()
    document.body.dataset.drawn = "1"
    document.body.dataset.drawMs = String(Math.round(performance.now() - t0))
  }

  // --- dispatch ----------------------------------------------------------------------------------
  const page = document.body.dataset.page
  const start =
    page === "run"
      ? () => runPage(decodeURIComponent(location.pathname.slice("/run/".length)))
      : page === "compare"
        ? () =>
            comparePage(
              (new URLSearchParams(location.search).get("runs") || "")
                .split(",")
                .map((s) => s.trim())
                .filter(Boolean),
            )
        : runsPage
  start().catch((e) => {
    app.querySelector(".loading")?.remove()
    fail(page, e)
    document.body.dataset.failed = "1"
  })
})()
