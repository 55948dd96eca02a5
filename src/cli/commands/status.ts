/** `warren status`: one sandbox in detail. */
import { Command } from "commander";
import { runVerb, withJson } from "../context.js";
import { describeSandbox, printJson } from "../render.js";

export function statusCommand(): Command {
  const cmd = new Command("status")
    .description("show one sandbox")
    .argument("<sandbox>", "sandbox id or name");
  withJson(cmd).action(async (ref: string, f: { json?: boolean }) =>
    runVerb(f.json, async (w) => {
      const s = await w.getSandbox(ref);
      if (f.json) printJson(s);
      else process.stdout.write(describeSandbox(s));
    }),
  );
  return cmd;
}
