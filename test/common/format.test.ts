/** Number formatting: thousands grouping as toLocaleString("en-US") writes it, without ICU. */
import fc from "fast-check"
import { describe, expect, it } from "vitest"
import { formatNumber, groupThousands } from "../../core/common/index.ts"

describe("groupThousands", () => {
  it("writes every safe integer as toLocaleString('en-US') does", () => {
    fc.assert(
      fc.property(fc.maxSafeInteger(), (n) => {
        expect(groupThousands(n)).toBe(n.toLocaleString("en-US"))
      }),
    )
  })

  it("groups at each power of a thousand", () => {
    expect([0, 999, 1000, 999_999, 1_000_000, -1234].map(groupThousands)).toEqual([
      "0",
      "999",
      "1,000",
      "999,999",
      "1,000,000",
      "-1,234",
    ])
  })
})

describe("formatNumber", () => {
  it("rounds large values to whole, grouped numbers and keeps three significant digits below", () => {
    expect([1234.6, 123.4, 12.34, 1.234, 0.01234, 0.00001].map(formatNumber)).toEqual([
      "1,235",
      "123",
      "12.3",
      "1.23",
      "0.0123",
      "1.00e-5",
    ])
  })
})
