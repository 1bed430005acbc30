#!/usr/bin/env python3
"""Generates test/fixtures/numpy-quantiles.json: numpy.percentile answers, as exact
float64 bit patterns, for every one of the 13 methods over a grid of datasets and
percentiles. The engine tests (test/engine-fixtures.test.ts) compare both engines
against this table bit for bit. Run by hand from the repository root:

    python3 scripts/gen_numpy_fixtures.py

Deterministic: a fixed seed (numpy PCG64) and a fixed dataset list, so rerunning
with the same numpy version rewrites the same bytes.

The -0.0 / +0.0 subtlety. numpy.percentile finds order statistics with
ndarray.partition (introselect, or x86-simd-sort on AVX-512 machines), which
compares with `<` and is not stable, so where -0.0 and +0.0 tie their relative
order after the partition is arbitrary. The engine orders -0 before +0. Where
the sign of a zero result depends on that order, numpy's answer is not a
property of the data alone. For those cases (`zeroSignAmbiguous`) we also store
`expectedTotalOrder`: numpy's own index and interpolation code
(numpy.lib._function_base_impl: _QuantileMethods, _get_indexes, _get_gamma,
_lerp) run over the data sorted in the engine's total order instead of
partitioned. The script checks that this replay reproduces np.percentile
bit for bit on every case that is not ambiguous, and that on ambiguous cases
it differs from np.percentile at most in the sign of zero.

Cases where numpy's answer overflows (neighbours of opposite sign near
±1.8e308, where numpy's `b - a` is ±inf) are not regular cases: they go to
`overflowCases`, where the engine must return the finite a*(1-t) + b*t.
"""

import base64
import json
import math
import struct
import sys
from pathlib import Path

import numpy as np
from numpy.lib import _function_base_impl as npq

SEED = 20240917
OUT = Path(__file__).resolve().parent.parent / "test" / "fixtures" / "numpy-quantiles.json"

# Order is the engine ABI (src/core/methods.ts QUANTILE_METHODS).
METHODS = [
    "linear",
    "inverted_cdf",
    "averaged_inverted_cdf",
    "closest_observation",
    "interpolated_inverted_cdf",
    "hazen",
    "weibull",
    "median_unbiased",
    "normal_unbiased",
    "lower",
    "higher",
    "nearest",
    "midpoint",
]

SPECIAL_PERCENTILES = [0.0, 100.0, 50.0, 99.5, 1e-9, 100 - 1e-9, 25.0, 75.0, 33.3]
COMMON_PERCENTILES = [1.0, 5.0, 10.0, 90.0, 95.0, 99.0, 99.9]

# Datasets up to this size are stored as a readable list of hex bit patterns;
# larger ones as base64 of little-endian float64 bytes.
HEX_MAX_N = 100

rng = np.random.default_rng(SEED)


def bits_hex(x: float) -> str:
    """The float64's bit pattern as 16 hex digits (the uint64, big-endian digits)."""
    return format(struct.unpack("<Q", struct.pack("<d", float(x)))[0], "016x")


def f64(values) -> np.ndarray:
    return np.asarray(values, dtype=np.float64)


# --- datasets -----------------------------------------------------------------

SUBNORMALS = [5e-324, -5e-324, 1e-320, -1e-315, 2.2e-308, -2.2e-308, 1e-310, 2.225073858507201e-308]
HUGE = [1.7e308, -1.7e308, 1e300, -1e300, 1.5e308, -8e307, 1.7976931348623157e308]


def kind_values(kind: str, n: int) -> np.ndarray:
    """n values of a named shape, drawn from the shared generator."""
    if kind == "normal":
        return rng.normal(0.0, 1.0, n)
    if kind == "uniform_wide":
        return rng.uniform(-1e6, 1e6, n)
    if kind == "integers_dups":
        return rng.integers(-5, 6, n).astype(np.float64)
    if kind == "negatives":
        return -rng.lognormal(0.0, 2.0, n)
    if kind == "signed_zeros":
        return rng.choice(f64([-0.0, 0.0, -0.0, 0.0, 1.0, -1.0, 0.5, -2.5]), n)
    if kind == "zeros_only":
        return rng.choice(f64([-0.0, 0.0]), n)
    if kind == "subnormals":
        pool = f64(SUBNORMALS + [0.0, -0.0, 1e-300, -1e-300])
        return rng.choice(pool, n)
    if kind == "huge":
        # Same-sign huge values plus ordinary ones: large but no overflowing neighbours.
        return np.concatenate([rng.choice(f64([1.7e308, 1e300, 1.5e308, 1.7976931348623157e308]), (n + 1) // 2),
                               rng.normal(0.0, 1e3, n // 2)])
    if kind == "huge_signed":
        return rng.choice(f64(HUGE + [0.0, 1.0, -1.0]), n)
    if kind == "all_equal":
        return np.full(n, float(rng.choice(f64([3.25, -7.0, 1e-300, 2.0**52 + 1]))))
    if kind == "log_spread":
        return rng.choice(f64([-1.0, 1.0]), n) * 10.0 ** rng.uniform(-300, 300, n)
    if kind == "near_ties":
        base = 1.0 + rng.integers(0, 4, n) * np.spacing(1.0)
        return base * rng.choice(f64([1.0, -1.0]), n)
    if kind == "integers_big":
        return rng.integers(-(2**53), 2**53, n).astype(np.float64)
    if kind == "mixed_specials":
        specials = f64(SUBNORMALS + [1.7e308, 1e300, -1e300, 1.5e308, 0.0, -0.0, 0.0, -0.0, 1.0, -1.0])
        return np.where(rng.random(n) < 0.3, rng.choice(specials, n), rng.normal(0.0, 1e3, n))
    raise ValueError(kind)


SMALL_KINDS = [
    "normal", "integers_dups", "signed_zeros", "subnormals", "huge", "negatives",
    "all_equal", "log_spread", "zeros_only", "near_ties", "uniform_wide", "huge_signed",
    "mixed_specials", "integers_big",
]


def build_datasets() -> list:
    datasets = []

    def add(kind: str, values) -> None:
        datasets.append({"id": f"d{len(datasets):03d}-{kind}-n{len(values)}", "kind": kind, "values": f64(values)})

    # Hand-written edge cases first, so their ids stay put.
    add("seed_example", [1, 7, 2, 6])
    add("signed_zeros", [-0.0, 0.0])
    add("signed_zeros", [0.0, -0.0])
    add("signed_zeros", [0.0, -0.0, 0.0, -0.0, 1.0])
    add("signed_zeros", [-1.0, -0.0, 0.0, 1.0])
    add("signed_zeros", [0.0, 0.0, -0.0, -0.0, -0.0, 0.0, -1.0, 2.0, -0.0])
    add("zeros_only", [-0.0])
    add("zeros_only", [-0.0, -0.0, -0.0])
    add("zeros_only", [0.0, 0.0, 0.0, 0.0])
    add("subnormals", [5e-324])
    add("subnormals", [5e-324, -5e-324, 0.0])
    add("subnormals", [2.2e-308, 5e-324, -2.2e-308])
    add("subnormals", [5e-324, 1e-323, 1.5e-323, 2e-323])
    add("huge", [1.7e308, 1e300, -1e300])
    add("huge", [1.7976931348623157e308, 1.7976931348623157e308, 1e308])
    add("huge", [-1.7976931348623157e308, -1.7e308, -1e300])
    add("all_equal", [3.0] * 7)
    add("integers", list(range(10)))
    add("integers", [5, 5, 5, 1, 1, 9, 9, 9, 9])
    add("sorted_desc", [float(x) for x in range(20, 0, -1)])
    # Overflow: numpy's `b - a` is ±inf between these neighbours.
    add("overflow", [-1.7e308, 1.7e308])
    add("overflow", [-1.7976931348623157e308, 1.7976931348623157e308])
    add("overflow", [-1.7e308, 1e308])
    add("overflow", [-1e308, 1e308, 1.7e308])
    add("overflow", [-1.7e308, -1.0, 1.7e308, 1.7e308])

    # Many small sizes, each with several shapes.
    for n in range(1, 21):
        for j in range(4):
            kind = SMALL_KINDS[(n * 4 + j) % len(SMALL_KINDS)]
            add(kind, kind_values(kind, n))

    for kind in ["normal", "integers_dups", "signed_zeros", "mixed_specials", "log_spread", "all_equal", "huge_signed"]:
        add(kind, kind_values(kind, 100))
    for kind in ["normal", "integers_dups", "signed_zeros", "subnormals", "near_ties"]:
        add(kind, kind_values(kind, 1000))
    for kind in ["uniform_wide", "integers_dups", "mixed_specials"]:
        add(kind, kind_values(kind, 10000))
    for kind in ["normal", "signed_zeros", "mixed_specials"]:
        add(kind, kind_values(kind, 100000))
    return datasets


def percentiles_for(n: int) -> list:
    ps = list(SPECIAL_PERCENTILES) + list(COMMON_PERCENTILES)
    ps += [float(x) for x in rng.uniform(0.0, 100.0, 4)]
    if n >= 2:
        # Exact index hits: (n-1)*q lands on an integer (linear, lower, higher, nearest,
        # midpoint) or n*q does (inverted_cdf's gamma == 0 branch); the division by 100
        # makes many of them land a rounding error away, which is the point.
        ps.append(100.0 * int(rng.integers(0, n)) / (n - 1))
        ps.append(100.0 * int(rng.integers(0, n + 1)) / n)
        ps.append(100.0 * (int(rng.integers(0, n)) + 0.5) / n)
    seen = set()
    unique = []
    for p in ps:
        if 0.0 <= p <= 100.0 and p not in seen:
            seen.add(p)
            unique.append(p)
    return unique


# --- numpy, and numpy's own arithmetic replayed over the engine's total order -----

def total_order_sorted(values: np.ndarray) -> np.ndarray:
    """Ascending with every -0.0 before every +0.0 (the engine's order); stable."""
    # np.lexsort sorts by the last key first; ties (only ±0 here) by `not signbit`.
    order = np.lexsort((~np.signbit(values), values))
    return values[order]


def percentile_over_sorted(sorted_values: np.ndarray, q: np.ndarray, method: str) -> np.ndarray:
    """numpy's `_quantile` (numpy 2.x) with `arr.partition(...)` replaced by a total-order
    sort: the same index, gamma and _lerp code, so the same float64 arithmetic."""
    n = sorted_values.shape[0]
    props = npq._QuantileMethods[method]
    virtual = np.asanyarray(props["get_virtual_index"](n, q))
    if props["fix_gamma"] is None:
        return np.take(sorted_values, virtual, axis=0)
    previous_indexes, next_indexes = npq._get_indexes(sorted_values, virtual, n)
    gamma = npq._get_gamma(virtual, previous_indexes, props)
    return npq._lerp(sorted_values[previous_indexes], sorted_values[next_indexes], gamma)


def neighbours_over_sorted(sorted_values: np.ndarray, q: np.ndarray, method: str):
    """(a, b, t) that numpy's _lerp sees for each q (interpolating methods only)."""
    n = sorted_values.shape[0]
    props = npq._QuantileMethods[method]
    virtual = np.asanyarray(props["get_virtual_index"](n, q))
    previous_indexes, next_indexes = npq._get_indexes(sorted_values, virtual, n)
    gamma = npq._get_gamma(virtual, previous_indexes, props)
    return sorted_values[previous_indexes], sorted_values[next_indexes], gamma


def with_zero_sign(values: np.ndarray, negative: bool) -> np.ndarray:
    out = values.copy()
    out[out == 0] = -0.0 if negative else 0.0
    return out


class CaseTable:
    """Cases for one key kind ("dataset" or "union"), with the zero-sign bookkeeping."""

    def __init__(self, key: str):
        self.key = key
        self.cases = []
        self.overflow_cases = []
        self.ambiguous = 0
        self.ambiguous_differs = 0

    def add_values(self, key_id: str, values: np.ndarray, ps: list) -> None:
        p_array = f64(ps)
        q = np.true_divide(p_array, 100)  # what np.percentile divides by
        sorted_values = total_order_sorted(values)
        has_both_zero_signs = bool(np.any((values == 0) & np.signbit(values))) and bool(
            np.any((values == 0) & ~np.signbit(values)))
        for method in METHODS:
            with np.errstate(over="ignore", invalid="ignore"):
                got = np.percentile(values, p_array, method=method)
                replay = percentile_over_sorted(sorted_values, q, method)
                if has_both_zero_signs:
                    all_positive = np.percentile(with_zero_sign(values, False), p_array, method=method)
                    all_negative = np.percentile(with_zero_sign(values, True), p_array, method=method)
            for i, p in enumerate(ps):
                r = float(got[i])
                if not math.isfinite(r):
                    a, b, t = (float(x[i]) for x in neighbours_over_sorted(sorted_values, q, method))
                    finite = a * (1 - t) + b * t  # what the engine promises instead
                    assert math.isfinite(finite), (key_id, method, p)
                    self.overflow_cases.append({
                        self.key: key_id, "method": method, "p": p, "numpy": repr(r),
                        "lower": bits_hex(a), "upper": bits_hex(b), "gamma": bits_hex(t),
                        "expectedFinite": bits_hex(finite),
                    })
                    continue
                case = {self.key: key_id, "method": method, "p": p, "expected": bits_hex(r)}
                replayed = float(replay[i])
                is_ambiguous = has_both_zero_signs and bits_hex(all_positive[i]) != bits_hex(all_negative[i])
                if is_ambiguous:
                    self.ambiguous += 1
                    case["zeroSignAmbiguous"] = True
                    case["expectedTotalOrder"] = bits_hex(replayed)
                    assert replayed == r, ("replay differs beyond the sign of zero", key_id, method, p)
                    if bits_hex(replayed) != bits_hex(r):
                        self.ambiguous_differs += 1
                else:
                    assert bits_hex(replayed) == bits_hex(r), (
                        "replay of numpy's arithmetic does not reproduce np.percentile",
                        key_id, method, p, repr(replayed), repr(r))
                self.cases.append(case)


def build_unions(datasets: list) -> list:
    """Groups of datasets, each loaded into a pool of its own, queried as one union:
    numpy.percentile of their concatenation. A dataset may appear twice (two pools
    holding the same values)."""
    ids = [ds["id"] for ds in datasets]
    unions = []

    def add(members: list) -> None:
        unions.append({"id": f"u{len(unions):03d}-{len(members)}pools", "datasets": members})

    # Hand-written first, so their ids stay put: zeros of each sign in different
    # pools, a pool twice over, subnormals among zeros, huge values, overflow.
    add([ids[6], ids[8]])
    add([ids[1], ids[2], ids[3]])
    add([ids[0], ids[0]])
    add([ids[9], ids[6], ids[8], ids[10], ids[11]])
    add([ids[13], ids[14], ids[15]])
    add([ids[20], ids[17]])
    big = [ds["id"] for ds in datasets if ds["values"].shape[0] >= 10000]
    add(big)
    for _ in range(30):
        size = int(rng.integers(2, 9))
        add([ids[int(i)] for i in rng.choice(len(ids), size, replace=False)])
    return unions


def main() -> None:
    datasets = build_datasets()
    table = CaseTable("dataset")
    for ds in datasets:
        table.add_values(ds["id"], ds["values"], percentiles_for(ds["values"].shape[0]))
    cases, overflow_cases = table.cases, table.overflow_cases
    ambiguous, ambiguous_differs = table.ambiguous, table.ambiguous_differs

    by_id = {ds["id"]: ds["values"] for ds in datasets}
    unions = build_unions(datasets)
    union_table = CaseTable("union")
    for union in unions:
        values = np.concatenate([by_id[member] for member in union["datasets"]])
        union_table.add_values(union["id"], values, percentiles_for(values.shape[0]))

    stored = []
    for ds in datasets:
        values = ds["values"]
        entry = {"id": ds["id"], "kind": ds["kind"], "n": int(values.shape[0])}
        if values.shape[0] <= HEX_MAX_N:
            entry["hex"] = [bits_hex(v) for v in values]
        else:
            entry["base64"] = base64.b64encode(values.astype("<f8").tobytes()).decode("ascii")
        stored.append(entry)

    header = {
        "generator": "scripts/gen_numpy_fixtures.py",
        "numpyVersion": np.__version__,
        "pythonVersion": sys.version.split()[0],
        "seed": SEED,
        "methods": METHODS,
        "caseCount": len(cases),
        "zeroSignAmbiguousCount": ambiguous,
        "zeroSignAmbiguousDifferingCount": ambiguous_differs,
        "overflowCaseCount": len(overflow_cases),
        "unionCaseCount": len(union_table.cases),
        "unionZeroSignAmbiguousCount": union_table.ambiguous,
    }
    # One record per line: reviewable diffs, and no megabyte-long line except big datasets.
    lines = ["{"]
    for key, value in header.items():
        lines.append(f"  {json.dumps(key)}: {json.dumps(value)},")
    for key, items, last in (("datasets", stored, False), ("cases", cases, False),
                             ("overflowCases", overflow_cases, False), ("unions", unions, False),
                             ("unionCases", union_table.cases, False),
                             ("unionOverflowCases", union_table.overflow_cases, True)):
        lines.append(f"  {json.dumps(key)}: [")
        lines.append(",\n".join("    " + json.dumps(item, allow_nan=False) for item in items))
        lines.append("  ]" + ("" if last else ","))
    lines.append("}")
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text("\n".join(lines) + "\n", encoding="ascii")
    print(f"{OUT}: numpy {np.__version__}, {len(datasets)} datasets, {len(cases)} cases "
          f"({ambiguous} zero-sign ambiguous, {ambiguous_differs} of them where numpy's sign differs "
          f"from the total order), {len(overflow_cases)} overflow cases; {len(unions)} unions, "
          f"{len(union_table.cases)} union cases ({union_table.ambiguous} zero-sign ambiguous), "
          f"{len(union_table.overflow_cases)} union overflow cases; {OUT.stat().st_size} bytes")


if __name__ == "__main__":
    main()
