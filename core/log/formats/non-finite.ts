/**
 * Values a foreign log wrote as NaN or Infinity (Python's json.dumps writes them bare): no event
 * holds them (event values are finite), so the analysis pass counts them per key, with where they
 * were, for the run's descriptor (`nonFinite`): `show` notes every one. Bounded: per key a count,
 * the first NON_FINITE_PLACES rows and the last.
 */
import { NON_FINITE_PLACES, type NonFinite } from "../observed-events.ts"

type Place = NonFinite["last"]

export interface NonFiniteTally {
  /** One row that held `key` non-finite. */
  readonly add: (key: string, place: Place) => void
  /** The keys in the order first seen. */
  readonly result: () => ReadonlyArray<NonFinite>
}

export const nonFiniteTally = (): NonFiniteTally => {
  const byKey = new Map<string, { count: number; places: Place[]; last: Place }>()
  return {
    add: (key, place) => {
      const t = byKey.get(key)
      if (t === undefined) {
        byKey.set(key, { count: 1, places: [place], last: place })
        return
      }
      t.count++
      if (t.places.length < NON_FINITE_PLACES) t.places.push(place)
      t.last = place
    },
    result: () =>
      [...byKey].map(([key, t]) => ({ key, count: t.count, places: [...t.places], last: t.last })),
  }
}

/** The descriptor's `nonFinite` field: present only when some value was non-finite. */
export const withNonFinite = (
  list: ReadonlyArray<NonFinite>,
): { readonly nonFinite?: ReadonlyArray<NonFinite> } => (list.length > 0 ? { nonFinite: list } : {})
