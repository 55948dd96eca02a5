/** `warren stop`: stop sandboxes, keeping their workspaces. */
import { lifecycleCommand } from "../lifecycle-command.js";

export const stopCommand = () =>
  lifecycleCommand("stop", "stop sandboxes; workspaces are kept", (w, ref) => w.stopSandbox(ref));
