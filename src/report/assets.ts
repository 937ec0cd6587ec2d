/**
 * What a self-contained page needs besides its data: the plotting library's browser bundles
 * (Vega, Vega-Lite, vega-embed; BSD-3-Clause, read from the installed packages at run time,
 * so the page works offline from disk) and the escaping rules that keep text text.
 */
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";

const require = createRequire(import.meta.url);

/** The folder of an installed package (its exports map hides build/, so walk up from the entry). */
function packageDir(name: string): string {
  let dir = dirname(require.resolve(name));
  for (let i = 0; i < 6; i++) {
    try {
      const pkg = JSON.parse(readFileSync(join(dir, "package.json"), "utf8")) as { name?: string };
      if (pkg.name === name) return dir;
    } catch {
      // no package.json here: keep walking up
    }
    dir = dirname(dir);
  }
  throw new Error(`emlab report: cannot find the installed package '${name}'`);
}

export interface VegaBundle {
  /** The three UMD bundles in load order (vega, vega-lite, vega-embed), ready for inline <script>s. */
  scripts: string[];
  versions: Record<string, string>;
}

let cached: VegaBundle | undefined;

/** Reads the minified browser bundles once per process (≈ 0.8 MB together). */
export function vegaBundle(): VegaBundle {
  if (cached) return cached;
  const files: [string, string][] = [
    ["vega", "build/vega.min.js"],
    ["vega-lite", "build/vega-lite.min.js"],
    ["vega-embed", "build/vega-embed.min.js"],
  ];
  const versions: Record<string, string> = {};
  const scripts = files.map(([name, file]) => {
    const dir = packageDir(name);
    versions[name] = (JSON.parse(readFileSync(join(dir, "package.json"), "utf8")) as { version: string }).version;
    // BSD-3-Clause asks that redistributions keep the copyright notice: it travels with the code.
    const licence = readFileSync(join(dir, "LICENSE"), "utf8").replace(/\*\//g, "* /");
    const notice = `/*! ${name} ${versions[name]}\n${licence.trim()}\n*/\n`;
    return inlineScript(notice + readFileSync(join(dir, file), "utf8"));
  });
  cached = { scripts, versions };
  return cached;
}

/** Text for HTML element content or a quoted attribute. */
export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/**
 * JSON for a <script type="application/json"> block: `<` is written \u003c so no string in
 * the data (a model's answer, say) can close the block or open a comment; U+2028/9 too.
 */
export function jsonForScript(value: unknown): string {
  return JSON.stringify(value)
    .replace(/</g, "\\u003c")
    .replace(/\u2028/g, "\\u2028")
    .replace(/\u2029/g, "\\u2029");
}

/** Script text safe inside <script>…</script>: a literal "</script" would end the element early. */
export function inlineScript(code: string): string {
  return code.replace(/<\/(script)/gi, "<\\/$1").replace(/<!--/g, "<\\!--");
}
