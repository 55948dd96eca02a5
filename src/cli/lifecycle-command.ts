/** The shape shared by `warren stop`, `start` and `rm`: one op over one or more sandboxes. */
import { Command } from "commander";
import type { Sandbox } from "../core/types.js";
import type { Backend } from "../sdk/backend.js";
import { runVerb, withJson } from "./context.js";
import { printJson } from "./render.js";

/** A verb that applies `op` to each sandbox named. */
export function lifecycleCommand(
  name: string,
  description: string,
  op: (w: Backend, ref: string) => Promise<Sandbox>,
): Command {
  const cmd = new Command(name).description(description).argument("<sandbox...>", "sandbox ids or names");
  withJson(cmd).action(async (refs: string[], f: { json?: boolean }) =>
    runVerb(f.json, async (w) => {
      const done: Sandbox[] = [];
      for (const ref of refs) done.push(await op(w, ref));
      if (f.json) printJson(refs.length === 1 ? done[0] : done);
      else for (const s of done) process.stdout.write(`${s.id} ${s.state}\n`);
    }),
  );
  return cmd;
}
