/** `warren rm`: delete sandboxes and their workspaces. */
import { lifecycleCommand } from "../lifecycle-command.js";

export const rmCommand = () =>
  lifecycleCommand("rm", "delete sandboxes and their workspaces (idempotent)", (w, ref) =>
    w.deleteSandbox(ref),
  );
