/** `warren agent add | ls | rm | run | runs`: agent packages and their runs. */
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { Command } from "commander";
import type { AgentInfo, AgentRun } from "../../service/index.js";
import { extractEntries, readTar } from "../../service/agents-tar.js";
import type { Backend } from "../../sdk/backend.js";
import { int, runVerb, withJson } from "../context.js";
import { printJson, relative, table } from "../render.js";
import { terminalStream } from "./exec-output.js";

const size = (b: number): string =>
  b < 1024 * 1024 ? `${Math.ceil(b / 1024)} KiB` : `${(b / 1048576).toFixed(1)} MiB`;
const ms = (n: number | null): string =>
  n === null ? "-" : n < 10000 ? `${n} ms` : `${(n / 1000).toFixed(1)} s`;

function describeAgent(a: AgentInfo): string {
  const m = a.manifest;
  const res = Object.entries(m.resources).map(([k, v]) => `${k}=${v}`);
  return (
    [
      ["name", a.name],
      ["version", a.version],
      ["description", a.description || "-"],
      ["entrypoint", JSON.stringify(m.entrypoint)],
      ["environment", m.environment ?? "(default)"],
      ["driver", m.driver ?? "(default)"],
      ["resources", res.join(", ") || "(defaults)"],
      ["network", m.network],
      ["timeout", `${m.timeoutSeconds} s`],
      ["reuse", m.reuse ? "yes" : "no"],
      ["files", `${a.fileCount} (${size(a.sizeBytes)})`],
      ["path", a.path],
      ["added", a.addedAt],
    ]
      .map(([k, v]) => `${k.padEnd(12)} ${v}`)
      .join("\n") + "\n"
  );
}

function describeRun(r: AgentRun): string {
  return (
    [
      ["run", r.id],
      ["agent", `${r.agent} (version ${r.version})`],
      ["status", r.status],
      ["exit code", r.exitCode === null ? "-" : String(r.exitCode) + (r.timedOut ? " (timed out)" : "")],
      ["error", r.error ?? "-"],
      ["sandbox", r.sandboxId ?? "-"],
      ["started", r.startedAt],
      ["duration", ms(r.durationMs)],
      [
        "timings",
        `create ${ms(r.timings.createMs)}, upload ${ms(r.timings.uploadMs)}, ` +
          `run ${ms(r.timings.execMs)}, collect ${ms(r.timings.collectMs)}`,
      ],
      ["result", r.resultDir ?? "-"],
    ]
      .map(([k, v]) => `${k.padEnd(12)} ${v}`)
      .join("\n") + "\n"
  );
}

/** Fetches a run's workspace and unpacks it into `dir` (here, wherever the backend is). */
async function saveResult(w: Backend, r: AgentRun, dir: string): Promise<string> {
  const target = resolve(dir);
  extractEntries(readTar(await w.runResult(r.agent, r.id)), target);
  return target;
}

/** Exit status of a run: the entrypoint's code, or 1 for a run that failed otherwise. */
const exitOf = (r: AgentRun): number => (r.status === "succeeded" ? 0 : r.exitCode ? r.exitCode : 1);

export function agentCommand(): Command {
  const agent = new Command("agent").description("agent packages: add, list, remove, run, and their runs");
  withJson(
    agent
      .command("add")
      .description("add an agent package (a directory with warren-agent.json), or a new version of it")
      .argument("<dir>"),
  ).action(async (dir: string, f: { json?: boolean }) =>
    runVerb(f.json, async (w) => {
      const a = await w.addAgent({ dir: resolve(dir) });
      if (f.json) printJson(a);
      else
        process.stdout.write(
          `added ${a.name} version ${a.version} (${a.fileCount} files, ${size(a.sizeBytes)})\n`,
        );
    }),
  );
  withJson(agent.command("ls").description("list agent packages")).action(async (f: { json?: boolean }) =>
    runVerb(f.json, async (w) => {
      const list = await w.listAgents();
      if (f.json) return printJson(list);
      process.stdout.write(
        table(
          ["NAME", "VERSION", "FILES", "SIZE", "ADDED", "DESCRIPTION"],
          list.map((a) => [
            a.name,
            a.version,
            String(a.fileCount),
            size(a.sizeBytes),
            relative(a.addedAt),
            a.description,
          ]),
        ),
      );
    }),
  );
  withJson(agent.command("show").description("show one agent package").argument("<name>")).action(
    async (name: string, f: { json?: boolean }) =>
      runVerb(f.json, async (w) => {
        const a = await w.getAgent(name);
        if (f.json) printJson(a);
        else process.stdout.write(describeAgent(a));
      }),
  );
  withJson(
    agent
      .command("rm")
      .description("remove an agent package (its runs and their results stay)")
      .argument("<name>"),
  ).action(async (name: string, f: { json?: boolean }) =>
    runVerb(f.json, async (w) => {
      const a = await w.removeAgent(name);
      if (f.json) printJson(a);
      else process.stdout.write(`removed ${a.name}\n`);
    }),
  );
  withJson(
    agent
      .command("run")
      .description("run an agent in a fresh sandbox; output streams here; exits with the entrypoint's code")
      .argument("<name>")
      .option("--input <file>", "give this file on the entrypoint's stdin (- for this process's stdin)")
      .option("--out <dir>", "also unpack the run's workspace into this directory"),
  ).action(async (name: string, f: { input?: string; out?: string; json?: boolean }) =>
    runVerb(f.json, async (w) => {
      const input = f.input === undefined ? undefined : readFileSync(f.input === "-" ? 0 : f.input);
      const r = await w.runAgent(name, { input }, terminalStream(f.json));
      const saved = f.out && r.resultDir ? await saveResult(w, r, f.out) : null;
      if (f.json) printJson(r);
      else {
        const where = saved ?? r.resultDir;
        const tail = r.status === "succeeded" ? `succeeded in ${ms(r.durationMs)}` : `failed: ${r.error}`;
        process.stderr.write(`warren: run ${r.id} ${tail}${where ? `; workspace in ${where}` : ""}\n`);
      }
      return exitOf(r);
    }),
  );
  withJson(
    agent
      .command("runs")
      .description("list an agent's runs, newest first; with a run id, show that run")
      .argument("<name>")
      .argument("[run]", "a run id")
      .option("--limit <n>", "at most this many runs", int("limit"))
      .option("--out <dir>", "with a run id: unpack that run's workspace into this directory"),
  ).action(
    async (name: string, id: string | undefined, f: { limit?: number; out?: string; json?: boolean }) =>
      runVerb(f.json, async (w) => {
        if (id !== undefined) {
          const r = await w.getRun(name, id);
          const saved = f.out ? await saveResult(w, r, f.out) : null;
          if (f.json) printJson(r);
          else process.stdout.write(describeRun(r) + (saved ? `saved        ${saved}\n` : ""));
          return;
        }
        const runs = await w.listRuns(name, { limit: f.limit });
        if (f.json) return printJson(runs);
        process.stdout.write(
          table(
            ["RUN", "STATUS", "EXIT", "DURATION", "STARTED", "ERROR"],
            runs.map((r) => [
              r.id,
              r.status,
              r.exitCode === null ? "-" : String(r.exitCode),
              ms(r.durationMs),
              relative(r.startedAt),
              r.error ?? "",
            ]),
          ),
        );
      }),
  );
  return agent;
}
