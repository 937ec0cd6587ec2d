/**
 * The layer rule of src/ (ARCHITECTURE.md), checked by dependency-cruiser: `npm run -s deps`
 * (CI runs it after lint; any violation fails the build).
 *
 *   tensor ← model ← (train, providers) ← eval ← interp ← (watch, fix) ← organism ← (serve, report) ← cli
 *
 * with data beside them: data imports only tensor and model, and train, eval, organism and cli
 * may import data. A folder imports only the folders listed for it in MAY_IMPORT (siblings in
 * parentheses do not import each other); nothing imports src/index.ts or src/testing/, the
 * package's entries. Type-only imports count: a type from an upper layer ties the layers too.
 * Because every allowed edge points down, folders cannot form a cycle; cycles between files
 * of one folder are reported as warnings (no-circular), not failures.
 */

/** Each folder of src/ and the folders it may import (besides itself). */
const MAY_IMPORT = {
  tensor: [],
  model: ["tensor"],
  data: ["tensor", "model"],
  train: ["tensor", "model", "data"],
  providers: ["tensor", "model"],
  eval: ["tensor", "model", "data", "train", "providers"],
  interp: ["tensor", "model", "train", "providers", "eval"],
  watch: ["tensor", "model", "train", "providers", "eval", "interp"],
  fix: ["tensor", "model", "train", "providers", "eval", "interp"],
  organism: ["tensor", "model", "data", "train", "providers", "eval", "interp", "watch", "fix"],
  serve: ["tensor", "model", "train", "providers", "eval", "interp", "watch", "fix", "organism"],
  report: ["tensor", "model", "train", "providers", "eval", "interp", "watch", "fix", "organism"],
  cli: ["tensor", "model", "data", "train", "providers", "eval", "interp", "watch", "fix", "organism", "serve", "report"],
};
const FOLDERS = Object.keys(MAY_IMPORT);

const layerRules = FOLDERS.map((folder) => {
  const others = FOLDERS.filter((f) => f !== folder && !MAY_IMPORT[folder].includes(f));
  return {
    name: `${folder}-imports-only-below`,
    comment: `src/${folder} may import only ${MAY_IMPORT[folder].join(", ") || "itself"} (the layer rule, ARCHITECTURE.md)`,
    severity: "error",
    from: { path: `^src/${folder}/` },
    to: { path: `^src/(${others.join("|")})/` },
  };
});

/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    ...layerRules,
    {
      name: "no-import-of-entries",
      comment: "src/index.ts and src/testing/ are the package's entries: no module of src/ imports them",
      severity: "error",
      from: { path: "^src/", pathNot: "^src/(index\\.ts$|testing/)" },
      to: { path: "^src/(index\\.ts$|testing/)" },
    },
    {
      name: "no-circular",
      comment: "a cycle between files (always inside one folder: the layer rules forbid cycles between folders)",
      severity: "warn",
      from: {},
      to: { circular: true },
    },
  ],
  options: {
    doNotFollow: { path: "node_modules" },
    includeOnly: "^src/",
    tsPreCompilationDeps: true,
    tsConfig: { fileName: "tsconfig.json" },
    enhancedResolveOptions: { extensions: [".ts", ".js", ".mjs", ".json"] },
    reporterOptions: { text: { highlightFocused: true } },
  },
};
