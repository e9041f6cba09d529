"""js_number / canonical_json / spec hashes against what interleave's TypeScript computes."""

import json
import math
import unittest

from _util import scenario

import interleave_sdk as sdk

# Expected values were computed once with the TypeScript code of this repository (node 20, tsx):
#   cd /work/wt-py && npm ci && node bin/run-ts.mjs SCRIPT.ts, where SCRIPT.ts printed, for each
#   bundled scenario, hashJson(JSON.parse(file)) ("raw") and hashJson(encodeSpec(decodeSpec(json)))
#   ("decoded": what the engine records as RunStarted.specHash), from core/events.ts and
#   core/spec.ts; and canonicalJson(ODD) / hashJson(ODD) for the ODD value below.
TS_HASHES = {
    "petdino-swin-t": {"raw": "5a4515ad664b2a6e", "decoded": "ca46e9f4633a1b38"},
    "text-first-3to2": {"raw": "8ece94718e23558e", "decoded": "d003258316bba926"},
    "trex2-joint-8to1": {"raw": "c49d397ed643e514", "decoded": "41a3e8253060e2c3"},
    "visual-accumulate-4": {"raw": "3232f86dc6b86215", "decoded": "d4b7e16c58b91fcf"},
    "visual-only": {"raw": "b1ab5b317729d883", "decoded": "69ef859cd3add286"},
}

ODD = {
    "b": [1e-5, 1e-7, 1e21, 123456789012345680000, 0.1, 2.5e-8, -0.0, 1.5e21, 5e-324, 1.7976931348623157e308,
          100, 1e-6, 123.456, -2.5e-7, 0.000001234],
    "a": {"10": 1, "9": 2, "z": "é\u2028\n\"\u0001", "\uffff": 1, "\U0001F600": 2, "x": None, "t": True},
    "1": [],
}
TS_ODD_JSON = ('{"1":[],"a":{"9":2,"10":1,"t":true,"x":null,"z":"é\u2028\\n\\"\\u0001","\U0001F600":2,"\uffff":1},'
               '"b":[0.00001,1e-7,1e+21,123456789012345680000,0.1,2.5e-8,0,1.5e+21,5e-324,1.7976931348623157e+308,'
               '100,0.000001,123.456,-2.5e-7,0.000001234]}')
TS_ODD_HASH = "fb2625c1dcaa4a48"


class JsNumber(unittest.TestCase):
    CASES = [
        (1e-5, "0.00001"),
        (1e-7, "1e-7"),
        (1e21, "1e+21"),
        (123456789012345680000, "123456789012345680000"),
        (123456789012345680000.0, "123456789012345680000"),
        (0.1, "0.1"),
        (2.5e-8, "2.5e-8"),
        (-0.0, "0"),
        (0.0, "0"),
        (0, "0"),
        (1.0, "1"),
        (-1.0, "-1"),
        (42, "42"),
        (100.0, "100"),
        (1e20, "100000000000000000000"),
        (1.5e21, "1.5e+21"),
        (1e-6, "0.000001"),
        (1.5e-6, "0.0000015"),
        (0.000001234, "0.000001234"),
        (1.234e-7, "1.234e-7"),
        (-2.5e-7, "-2.5e-7"),
        (123.456, "123.456"),
        (0.1 + 0.2, "0.30000000000000004"),
        (1 / 3, "0.3333333333333333"),
        (5e-324, "5e-324"),
        (1.7976931348623157e308, "1.7976931348623157e+308"),
        (2**53, "9007199254740992"),
        (2**60, "1152921504606847000"),
        (4e-4, "0.0004"),
        (1e-4 * 10, "0.001"),
        (12345.678e10, "123456780000000"),
        (9.999999999999999e20, "999999999999999900000"),
        (float("nan"), "null"),
        (float("inf"), "null"),
    ]

    def test_cases(self):
        for x, want in self.CASES:
            self.assertEqual(sdk.js_number(x), want, repr(x))

    def test_round_trip(self):
        # Whatever the notation, the digits are the shortest that read back as the same double.
        for x, _ in self.CASES:
            if isinstance(x, float) and math.isfinite(x):
                self.assertEqual(float(sdk.js_number(x)), x if x != 0 else 0.0)

    def test_bool_is_not_a_number(self):
        with self.assertRaises(TypeError):
            sdk.js_number(True)


class CanonicalJson(unittest.TestCase):
    def test_matches_typescript(self):
        self.assertEqual(sdk.canonical_json(ODD), TS_ODD_JSON)
        self.assertEqual(sdk.hash_json(ODD), TS_ODD_HASH)

    def test_no_spaces_sorted_keys(self):
        self.assertEqual(sdk.canonical_json({"b": 1, "a": [1.0, {"d": None, "c": False}]}),
                         '{"a":[1,{"c":false,"d":null}],"b":1}')

    def test_rejects_non_json(self):
        with self.assertRaises(TypeError):
            sdk.canonical_json({"a": object()})
        with self.assertRaises(TypeError):
            sdk.canonical_json({1: 2})


class SpecHash(unittest.TestCase):
    def test_bundled_scenarios(self):
        for name, want in TS_HASHES.items():
            raw = scenario(name)
            self.assertEqual(sdk.hash_json(raw), want["raw"], name)
            self.assertEqual(sdk.spec_hash(raw), want["decoded"], name)
            self.assertEqual(sdk.spec_hash(raw, normalize=False), want["raw"], name)
            # Normalising twice changes nothing.
            self.assertEqual(sdk.hash_json(sdk.normalize_spec(sdk.normalize_spec(raw))), want["decoded"], name)

    def test_normalize_names_the_bad_field(self):
        spec = scenario("visual-only")
        spec["phases"][0]["ratio"] = {"visual": 0, "text": 0}
        with self.assertRaisesRegex(ValueError, r"spec.phases\[0\].ratio: visual and text cannot both be 0"):
            sdk.normalize_spec(spec)
        with self.assertRaisesRegex(ValueError, "spec.optimizer.groups"):
            sdk.normalize_spec({**scenario("visual-only"), "optimizer": {"kind": "sgd", "lr": 1, "groups": []}})


class Planner(unittest.TestCase):
    """A few plans of core/plan.ts planStep (printed by the TypeScript planner), and its invariants."""

    def test_known_plans(self):
        spec = scenario("trex2-joint-8to1")
        p = sdk.plan_step(spec, 98)
        self.assertEqual((p["phase"], p["phaseStep"], p["modality"], p["cycle"], p["position"]), ("joint", 8, "text", 0, 8))
        self.assertEqual(p["lr"], {"backbone": 1e-5, "text-encoder": 1e-5, "visual-encoder": 1e-4, "head": 1e-4})
        spec = scenario("visual-accumulate-4")
        got = [(q["micro"], q["update"]) for q in (sdk.plan_step(spec, s) for s in range(9))]
        self.assertEqual(got, [(0, False), (1, False), (2, False), (3, True), (0, False), (1, False), (2, False), (3, True), (0, True)])
        spec = scenario("text-first-3to2")
        mods = "".join(sdk.plan_step(spec, 50 + i)["modality"][0] for i in range(10))
        self.assertEqual(mods, "ttvvvttvvv")
        # visual blocks of 3 with accumulation 2: groups of 2 and 1
        self.assertEqual([sdk.plan_step(spec, 52 + i)["update"] for i in range(3)], [False, True, True])
        self.assertAlmostEqual(sdk.plan_step(spec, 0)["lr"]["head"], 0.01 * 0.1 * 0.5)

    def test_offset(self):
        spec = scenario("trex2-joint-8to1")
        spec["phases"][1]["offset"] = 1  # PET-DINO's shifted cycle: the first cycle has 7 visual steps
        mods = "".join(sdk.plan_step(spec, 90 + i)["modality"][0] for i in range(18))
        self.assertEqual(mods, "vvvvvvvt" + "vvvvvvvvt" + "v")
        co = sdk.coordinates(spec, 90)
        self.assertEqual((co["cycle"], co["position"]), (0, 1))
        self.assertEqual(sdk.coordinates(spec, 97)["position"], 8)
        self.assertEqual(sdk.coordinates(spec, 98)["cycle"], 1)
        self.assertEqual(sdk.text_steps_before(spec, "joint", 8), 90 + 1)

    def test_out_of_range(self):
        with self.assertRaisesRegex(ValueError, "outside the schedule"):
            sdk.coordinates(scenario("visual-only"), 9090)


if __name__ == "__main__":
    unittest.main()
