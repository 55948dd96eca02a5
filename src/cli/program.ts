/** The `warren` command line: one file per verb under commands/. */
import { Command } from "commander";
import { agentCommand } from "./commands/agent.js";
import { attachCommand } from "./commands/attach.js";
import { cpCommand } from "./commands/cp.js";
import { createCommand } from "./commands/create.js";
import { doctorCommand } from "./commands/doctor.js";
import { driverCommand } from "./commands/driver.js";
import { envCommand } from "./commands/env.js";
import { execCommand } from "./commands/exec.js";
import { killCommand } from "./commands/kill.js";
import { logsCommand } from "./commands/logs.js";
import { lsCommand } from "./commands/ls.js";
import { profileCommand } from "./commands/profile.js";
import { mcpCommand } from "./commands/mcp.js";
import { psCommand } from "./commands/ps.js";
import { reapCommand } from "./commands/reap.js";
import { rmCommand } from "./commands/rm.js";
import { runCommand } from "./commands/run.js";
import { serveCommand } from "./commands/serve.js";
import { shellCommand } from "./commands/shell.js";
import { startCommand } from "./commands/start.js";
import { statusCommand } from "./commands/status.js";
import { stopCommand } from "./commands/stop.js";

/** Builds the program. */
export function buildProgram(): Command {
  const program = new Command("warren")
    .description(
      "Self-hosted sandboxes for AI agents: isolated, persistent, journaled.\nState: $WARREN_HOME (default $XDG_DATA_HOME/warren).",
    )
    .version("0.1.0")
    .enablePositionalOptions()
    .showHelpAfterError();
  for (const make of [
    runCommand,
    createCommand,
    execCommand,
    shellCommand,
    cpCommand,
    psCommand,
    attachCommand,
    killCommand,
    lsCommand,
    statusCommand,
    logsCommand,
    stopCommand,
    startCommand,
    rmCommand,
    reapCommand,
    envCommand,
    agentCommand,
    doctorCommand,
    driverCommand,
    profileCommand,
    mcpCommand,
    serveCommand,
  ]) {
    program.addCommand(make());
  }
  return program;
}
