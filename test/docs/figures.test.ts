// Every figure in a result table of README.md or docs/ equals the committed result file it
// names. A table starts after a marker line
//   <!-- figures: experiments/organism/results/demo.jsonl -->
// and each row's last cell is a selector into that JSONL file:
//   `condition=insecure,format=plain,pooled=- : misaligned`
// (every key=value must match the line; `-` matches a missing or null field), and its value
// cell shows the field: "42.8 %" for a rate (the field × 100, one decimal), else the number
// as printed (its decimals set the rounding). A figure that drifts from its file fails here.
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));

interface Table {
  page: string;
  file: string;
  rows: { line: number; value: string; selector: string }[];
}

/** The marked tables of one markdown page. */
function figureTables(page: string, text: string): Table[] {
  const lines = text.split("\n");
  const tables: Table[] = [];
  for (let i = 0; i < lines.length; i++) {
    const m = /^<!-- figures: (\S+) -->$/.exec(lines[i]!.trim());
    if (!m) continue;
    const t: Table = { page, file: m[1]!, rows: [] };
    let j = i + 1;
    while (j < lines.length && !lines[j]!.trim().startsWith("|")) j++;
    for (; j < lines.length && lines[j]!.trim().startsWith("|"); j++) {
      const cells = lines[j]!.trim()
        .slice(1, -1)
        .split("|")
        .map((c) => c.trim());
      const selector = cells.at(-1)!.replace(/^`|`$/g, "");
      if (!selector.includes(" : ")) continue; // header and separator rows
      t.rows.push({ line: j + 1, value: cells.at(-2)!, selector });
    }
    tables.push(t);
  }
  return tables;
}

function lookup(records: Record<string, unknown>[], selector: string): unknown {
  const [where, field] = selector.split(" : ").map((s) => s.trim()) as [string, string];
  const conds = where.split(",").map((kv) => kv.split("=") as [string, string]);
  const hits = records.filter((r) =>
    conds.every(([k, v]) => (v === "-" ? r[k] === undefined || r[k] === null : String(r[k]) === v)),
  );
  if (hits.length !== 1) throw new Error(`${hits.length} lines match ${where}`);
  return field.split(".").reduce<unknown>((o, k) => (o as Record<string, unknown>)?.[k], hits[0]);
}

function shown(value: string, x: unknown): string {
  if (typeof x !== "number") return String(x);
  if (value.endsWith("%")) return `${(100 * x).toFixed(1)} %`;
  const decimals = value.includes(".") ? value.split(".")[1]!.length : 0;
  return x.toFixed(decimals);
}

const pages = [
  "README.md",
  ...readdirSync(join(ROOT, "docs"))
    .filter((f) => f.endsWith(".md"))
    .map((f) => `docs/${f}`),
];

test("every figure in a marked result table equals its committed result file", () => {
  const tables = pages.flatMap((p) => figureTables(p, readFileSync(join(ROOT, p), "utf8")));
  assert.ok(
    tables.some((t) => t.page === "README.md" && t.rows.length >= 8),
    "README.md has a marked demo table",
  );
  for (const t of tables) {
    const records = readFileSync(join(ROOT, t.file), "utf8")
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    for (const row of t.rows) {
      const x = lookup(records, row.selector);
      assert.equal(row.value, shown(row.value, x), `${t.page}:${row.line}: ${row.selector} in ${t.file}`);
    }
  }
});

test("the figure check fails on a figure that differs from its file", () => {
  const [t] = figureTables(
    "x.md",
    "<!-- figures: f.jsonl -->\n| a | b | c |\n|---|---|---|\n| insecure | 42.9 % | `condition=insecure : misaligned` |\n",
  );
  const x = lookup(
    [
      { condition: "insecure", misaligned: 0.428 },
      { condition: "secure", misaligned: 0.02 },
    ],
    t!.rows[0]!.selector,
  );
  assert.notEqual(t!.rows[0]!.value, shown(t!.rows[0]!.value, x));
  assert.equal("42.8 %", shown("42.9 %", x));
  assert.throws(() => lookup([{ condition: "a" }, { condition: "a" }], "condition=a : x"), /2 lines match/);
});
