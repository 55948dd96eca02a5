// Runs the compiled tests with Node's test runner. `unit` runs only the unit tests next to the
// code (dist/src); no argument runs everything: unit, conformance, integration, security.
import { spawnSync } from "node:child_process";
import { readdirSync } from "node:fs";
import { join } from "node:path";

const roots = process.argv[2] === "unit" ? ["dist/src"] : ["dist/src", "dist/test"];
const files = [];
const walk = (dir) => {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) walk(p);
    else if (e.name.endsWith(".test.js")) files.push(p);
  }
};
roots.forEach(walk);
files.sort();
const r = spawnSync(process.execPath, ["--test", "--test-reporter=spec", ...files], { stdio: "inherit" });
process.exit(r.status ?? 1);
