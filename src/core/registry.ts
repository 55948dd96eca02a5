/** The driver registry: the service looks drivers up here and never imports one directly. */
import { NotFoundError } from "./errors.js";
import type { DriverFactory, DriverFactoryOptions, RuntimeDriver } from "./driver.js";

/** Holds the driver factories a program registered and the drivers built from them. */
export class DriverRegistry {
  private readonly factories = new Map<string, DriverFactory>();
  private readonly built = new Map<string, RuntimeDriver>();

  constructor(private readonly options: DriverFactoryOptions) {}

  /** Adds a driver factory; a later registration under the same name replaces the earlier. */
  register(factory: DriverFactory): this {
    this.factories.set(factory.name, factory);
    this.built.delete(factory.name);
    return this;
  }

  /** Registered factories, in registration order. */
  factoriesList(): DriverFactory[] {
    return [...this.factories.values()];
  }

  /** Whether a driver of this name is registered. */
  has(name: string): boolean {
    return this.factories.has(name);
  }

  /**
   * The driver of this name, built once.
   * @throws NotFoundError when no driver of that name is registered.
   */
  get(name: string): RuntimeDriver {
    const existing = this.built.get(name);
    if (existing) return existing;
    const factory = this.factoryOf(name);
    const driver = factory.create(this.options);
    this.built.set(name, driver);
    return driver;
  }

  /**
   * The factory of this name.
   * @throws NotFoundError when no driver of that name is registered.
   */
  factoryOf(name: string): DriverFactory {
    const factory = this.factories.get(name);
    if (!factory) {
      throw new NotFoundError(`no driver named "${name}"`, {
        hint: `use one of: ${[...this.factories.keys()].join(", ")} (see \`warren doctor\`)`,
        details: { driver: name },
      });
    }
    return factory;
  }
}
