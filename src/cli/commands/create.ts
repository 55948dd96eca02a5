/** `warren create`: make and start a sandbox. */
import { Command } from "commander";
import { runVerb, withJson } from "../context.js";
import { addCreateOptions, createOptionsFrom, type CreateFlags } from "../create-options.js";
import { driverFromSocket } from "./driver.js";
import { printJson } from "../render.js";

export function createCommand(): Command {
  const cmd = new Command("create").description("create and start a sandbox; prints its id");
  cmd.option(
    "--driver-socket <path>",
    "use the out-of-process driver on this socket (named by --driver or itself)",
  );
  addCreateOptions(withJson(cmd)).action(async (f: CreateFlags & { json?: boolean; driverSocket?: string }) =>
    runVerb(f.json, async (w) => {
      const o = createOptionsFrom(f);
      if (f.driverSocket !== undefined) o.driver = await driverFromSocket(w, f.driverSocket, f.driver);
      const s = await w.createSandbox(o);
      if (f.json) printJson(s);
      else process.stdout.write(`${s.id}\n`);
    }),
  );
  return cmd;
}
