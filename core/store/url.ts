/** Store URLs as messages may print them. Free of node-postgres, so any command can import it. */

/**
 * `url` as it may be printed: without its password (in the authority or as a `password` query
 * parameter). A string that does not parse as a URL is printed only when it cannot hold a
 * password (no `@`, no `password`).
 */
export const redactUrl = (url: string): string => {
  try {
    const u = new URL(url)
    if (u.password !== "") u.password = ""
    if (u.searchParams.has("password")) u.searchParams.set("password", "redacted")
    return u.toString()
  } catch {
    return /@|password/i.test(url) ? "(a URL that does not parse)" : `"${url}"`
  }
}
