/** `warren ls`: list sandboxes. */
import { Command } from "commander";
import { parsePairs } from "../../core/names.js";
import { collect, runVerb, withJson } from "../context.js";
import { printJson, relative, table } from "../render.js";

export function lsCommand(): Command {
  const cmd = new Command("ls")
    .description("list sandboxes (deleted ones too with --all)")
    .option("--all", "include deleted sandboxes")
    .option("--label <key=value>", "only sandboxes with this label (repeatable)", collect);
  withJson(cmd).action(async (f: { all?: boolean; label?: string[]; json?: boolean }) =>
    runVerb(f.json, async (w) => {
      const list = await w.listSandboxes({ all: f.all, labels: parsePairs(f.label ?? [], "label") });
      if (f.json) return printJson(list);
      process.stdout.write(
        table(
          ["ID", "NAME", "STATE", "DRIVER", "ENV", "CREATED", "EXPIRES"],
          list.map((s) => [
            s.id,
            s.name,
            s.state,
            s.driver,
            s.environment,
            relative(s.createdAt),
            relative(s.expiresAt),
          ]),
        ),
      );
    }),
  );
  return cmd;
}
