/** `warren create`: make and start a sandbox. */
import { Command } from "commander";
import { runVerb, withJson } from "../context.js";
import { addCreateOptions, createOptionsFrom, type CreateFlags } from "../create-options.js";
import { printJson } from "../render.js";

export function createCommand(): Command {
  const cmd = new Command("create").description("create and start a sandbox; prints its id");
  addCreateOptions(withJson(cmd)).action(async (f: CreateFlags & { json?: boolean }) =>
    runVerb(f.json, async (w) => {
      const s = await w.createSandbox(createOptionsFrom(f));
      if (f.json) printJson(s);
      else process.stdout.write(`${s.id}\n`);
    }),
  );
  return cmd;
}
