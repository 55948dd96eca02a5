/** The built-in drivers. Front ends register these; core and service never import a driver. */
import type { DriverFactory } from "../core/driver.js";
import { DriverRegistry } from "../core/registry.js";
import type { DriverFactoryOptions } from "../core/driver.js";
import { bwrapDriverFactory } from "./bwrap/driver.js";
import { externalDriverFactories } from "./external/driver.js";
import { fakeDriverFactory } from "./fake/driver.js";
import { hostDriverFactory } from "./host/driver.js";
import { microvmDriverFactory } from "./microvm/driver.js";

/** Built-in driver factories, in probe order. */
export const BUILTIN_DRIVERS: readonly DriverFactory[] = [
  bwrapDriverFactory,
  hostDriverFactory,
  fakeDriverFactory,
  microvmDriverFactory,
];

/** A registry holding every built-in driver, then the out-of-process drivers registered in the state dir. */
export function createBuiltinRegistry(options: DriverFactoryOptions): DriverRegistry {
  const registry = new DriverRegistry(options);
  for (const f of BUILTIN_DRIVERS) registry.register(f);
  for (const f of externalDriverFactories(options.stateDir)) registry.register(f);
  return registry;
}
