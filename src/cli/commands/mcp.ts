/** `warren mcp`: the Model Context Protocol server on stdin/stdout, for AI agents. */
import { Command } from "commander";
import { claimStdout, serveStdio } from "../../mcp/stdio.js";
import type { Backend } from "../../sdk/backend.js";
import { openBackend } from "../context.js";
import { printError } from "../render.js";

export function mcpCommand(): Command {
  return new Command("mcp")
    .description(
      "serve MCP (Model Context Protocol) tools on stdin/stdout for AI agents; stdout carries only protocol messages, logs go to stderr",
    )
    .option("--allow-host", "let agents use the host driver, which gives NO isolation (refused otherwise)")
    .action(async (f: { allowHost?: boolean }) => {
      // Before anything else runs: from here on only protocol messages reach stdout.
      claimStdout();
      let backend: Backend | null = null;
      try {
        // The CLI's own backend resolution, so `warren mcp` serves whatever the other verbs use.
        backend = await openBackend();
        await serveStdio(backend, { allowHost: f.allowHost === true });
      } catch (err) {
        process.exitCode = printError(err, false);
      } finally {
        await backend?.close();
      }
    });
}
