/**
 * The HTML shell of every page: the same document, told which page it is; app.js draws it from
 * the JSON routes. Every asset comes from this server (no CDN).
 */
export type PageKind = "runs" | "run" | "compare"

const escapeHtml = (s: string): string =>
  s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;")

const TITLES: Record<PageKind, string> = { runs: "runs", run: "run", compare: "compare runs" }

export const pageHtml = (
  kind: PageKind,
  context: { readonly store: string; readonly sweeps: ReadonlyArray<string> },
): string => `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>interleave · ${TITLES[kind]}</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/assets/uPlot.min.css">
<link rel="stylesheet" href="/assets/app.css">
</head>
<body data-page="${kind}" data-store="${escapeHtml(context.store)}" data-sweeps="${escapeHtml(JSON.stringify(context.sweeps))}">
<header class="top">
<a class="brand" href="/">interleave</a>
<nav><a href="/">runs</a>${context.sweeps.length > 0 ? ` <a href="/sweep?results=${encodeURIComponent(context.sweeps[0]!)}">sweep</a>` : ""}</nav>
<span class="store" title="the event store this UI reads (read-only)">store: ${escapeHtml(context.store)}</span>
</header>
<main id="app"><p class="loading">loading…</p></main>
<script src="/assets/uPlot.iife.min.js"></script>
<script src="/assets/app.js"></script>
</body>
</html>
`
