#!/usr/bin/env node
/** Entry point of the `warren` binary. */
import { buildProgram } from "./program.js";

await buildProgram().parseAsync(process.argv);
