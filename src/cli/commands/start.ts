/** `warren start`: start stopped sandboxes again. */
import { lifecycleCommand } from "../lifecycle-command.js";

export const startCommand = () =>
  lifecycleCommand("start", "start stopped sandboxes again", (w, ref) => w.startSandbox(ref));
