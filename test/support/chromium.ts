/**
 * Debian's Chromium through playwright-core, as every browser test launches it: headless, no
 * sandbox (tests run as root), and no background networking (this machine's closed network
 * refuses those connections, many at a time). CHROMIUM_PATH overrides the binary.
 */
import { existsSync } from "node:fs"
import { type Browser, chromium } from "playwright-core"

export const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium"

const ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
]

/** Launches Chromium; a missing binary is a failure that says how to install it. */
export const launchChromium = async (): Promise<Browser> => {
  if (!existsSync(CHROMIUM_PATH)) throw new Error(`${CHROMIUM_PATH} missing: apt-get install -y chromium`)
  return chromium.launch({ executablePath: CHROMIUM_PATH, args: ARGS })
}
