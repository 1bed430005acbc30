// How every bench reports: aligned tables on stdout for people, one JSON file
// in bench/results/ for machines, and the unit formatting both share.

import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import path from 'node:path';
import { ROOT } from '../../test/helpers/server-process.js';

export type Row = Record<string, string | number>;

/** Prints `rows` as a table under `title`: first column left-aligned, the rest right-aligned. */
export function printTable(title: string, rows: readonly Row[]): void {
  console.log(`\n${title}`);
  if (rows.length === 0) {
    console.log('  (no rows)');
    return;
  }
  const cols = [...new Set(rows.flatMap((r) => Object.keys(r)))];
  const cell = (v: string | number | undefined): string => (v === undefined ? '' : String(v));
  const widths = cols.map((c) => Math.max(c.length, ...rows.map((r) => cell(r[c]).length)));
  const line = (vals: string[]): string => `  ${vals.map((v, i) => (i === 0 ? v.padEnd(widths[i]) : v.padStart(widths[i]))).join('  ')}`;
  console.log(line(cols));
  console.log(line(widths.map((w) => '-'.repeat(w))));
  for (const r of rows) console.log(line(cols.map((c) => cell(r[c]))));
}

/** Writes bench/results/<name>.json: what ran where, then `data`. Returns the path. */
export function writeResults(name: string, data: object): string {
  const file = path.join(ROOT, 'bench', 'results', `${name}.json`);
  mkdirSync(path.dirname(file), { recursive: true });
  const meta = {
    date: new Date().toISOString(),
    command: `${path.relative(ROOT, process.argv[1] ?? '')} ${process.argv.slice(2).join(' ')}`.trim(),
    node: process.version,
    cpus: `${cpus().length} × ${cpus()[0]?.model ?? 'unknown'}`,
    memoryGiB: Math.round(totalmem() / 2 ** 30),
  };
  writeFileSync(file, `${JSON.stringify({ meta, ...data }, null, 2)}\n`);
  console.log(`\nwrote ${path.relative(ROOT, file)}`);
  return file;
}

function sig3(x: number): string {
  return Math.abs(x) >= 100 ? x.toFixed(0) : x.toPrecision(3);
}

/** 1234.5 ns → "1.23 µs": three significant digits, the unit chosen to fit. */
export function fmtNs(ns: number): string {
  if (!Number.isFinite(ns)) return '–';
  const a = Math.abs(ns);
  if (a < 1e3) return `${sig3(ns)} ns`;
  if (a < 1e6) return `${sig3(ns / 1e3)} µs`;
  if (a < 1e9) return `${sig3(ns / 1e6)} ms`;
  return `${sig3(ns / 1e9)} s`;
}

export const fmtUs = (us: number): string => fmtNs(us * 1e3);
export const fmtMs = (ms: number | null | undefined): string => (ms === null || ms === undefined ? '–' : fmtNs(ms * 1e6));

/** 1234567 → "1.23 M", 12345 → "12.3 k". */
export function si(x: number): string {
  if (!Number.isFinite(x)) return '–';
  const a = Math.abs(x);
  if (a >= 1e9) return `${(x / 1e9).toPrecision(3)} G`;
  if (a >= 1e6) return `${(x / 1e6).toPrecision(3)} M`;
  if (a >= 1e3) return `${(x / 1e3).toPrecision(3)} k`;
  return x.toPrecision(3);
}

/** 1e6 → "1e6", 1500 → "1500". */
export function fmtCount(n: number): string {
  return n >= 1e4 && Number.isInteger(Math.log10(n)) ? `1e${Math.log10(n)}` : String(n);
}

/** a/b as "1.23×" ('–' when either is missing). */
export function fmtRatio(a: number | undefined, b: number | undefined): string {
  return a === undefined || b === undefined || !Number.isFinite(a / b) ? '–' : `${(a / b).toFixed(2)}×`;
}

export const fmtPct = (x: number): string => (Number.isFinite(x) ? `${Math.round(x)}%` : '–');
