/** `warren env ls | pull | inspect | rm`: the environment catalog. */
import { Command } from "commander";
import type { EnvironmentInfo } from "../../service/index.js";
import { runVerb, withJson } from "../context.js";
import { printJson, table } from "../render.js";

const size = (b: number | null): string => (b === null ? "-" : `${(b / 1048576).toFixed(0)} MiB`);

function describe(e: EnvironmentInfo): string {
  return (
    [
      ["name", e.name],
      ["description", e.description],
      ["version", e.version],
      ["source", e.source],
      ["installed", e.installed ? "yes" : "no"],
      ["size", size(e.sizeBytes)],
      ["checksum", e.checksum ?? "-"],
      ["rootfs", e.rootfsPath ?? "-"],
      ["built", e.builtAt ?? "-"],
    ]
      .map(([k, v]) => `${k.padEnd(12)} ${v}`)
      .join("\n") + "\n"
  );
}

export function envCommand(): Command {
  const env = new Command("env").description("manage environments (root filesystems sandboxes run in)");
  withJson(env.command("ls").description("list environments: version, size, source, installed")).action(
    async (f: { json?: boolean }) =>
      runVerb(f.json, async (w) => {
        const list = await w.listEnvironments();
        if (f.json) return printJson(list);
        process.stdout.write(
          table(
            ["NAME", "INSTALLED", "VERSION", "SIZE", "SOURCE"],
            list.map((e) => [e.name, e.installed ? "yes" : "no", e.version, size(e.sizeBytes), e.source]),
          ),
        );
      }),
  );
  withJson(
    env
      .command("pull")
      .description("build or download an environment (progress on stderr)")
      .argument("<name>")
      .option("--force", "rebuild even if installed"),
  ).action(async (name: string, f: { force?: boolean; json?: boolean }) =>
    runVerb(f.json, async (w) => {
      const started = Date.now();
      const info = await w.pullEnvironment(
        name,
        (p) =>
          process.stderr.write(`[${((Date.now() - started) / 1000).toFixed(1)}s] ${p.phase}: ${p.detail}\n`),
        { force: f.force },
      );
      if (f.json) printJson(info);
      else process.stdout.write(describe(info));
    }),
  );
  withJson(env.command("inspect").description("show one environment").argument("<name>")).action(
    async (name: string, f: { json?: boolean }) =>
      runVerb(f.json, async (w) => {
        const info = await w.inspectEnvironment(name);
        if (f.json) printJson(info);
        else process.stdout.write(describe(info));
      }),
  );
  withJson(env.command("rm").description("remove an installed environment").argument("<name>")).action(
    async (name: string, f: { json?: boolean }) =>
      runVerb(f.json, async (w) => {
        const info = await w.removeEnvironment(name);
        if (f.json) printJson(info);
        else process.stdout.write(`removed ${name}\n`);
      }),
  );
  return env;
}
