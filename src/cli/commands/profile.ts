/**
 * `warren profile ls | show | use | add | rm`: named backends in the config file (a server URL
 * and API key, or local Warren on a state directory). API keys are never printed whole.
 */
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { Command } from "commander";
import { InvalidArgumentError } from "../../core/errors.js";
import {
  addProfile,
  getProfile,
  isRemoteProfile,
  readProfiles,
  redactProfile,
  removeProfile,
  useProfile,
  type Profile,
} from "../../sdk/profiles.js";
import { planBackend } from "../../sdk/resolve.js";
import { withJson } from "../context.js";
import { printError, printJson, table } from "../render.js";

/** Runs a profile verb (no backend is opened) and sets the exit status. */
async function profileVerb(json: boolean | undefined, fn: () => void | Promise<void>): Promise<void> {
  try {
    await fn();
    process.exitCode = 0;
  } catch (err) {
    process.exitCode = printError(err, json === true);
  }
}

const target = (p: Profile): string =>
  isRemoteProfile(p) ? p.url : `local ${p.stateDir ?? "(configured state dir)"}`;

function describe(name: string, p: Profile, active: boolean): string {
  const shown = redactProfile(p);
  const rows: Array<[string, string]> = [
    ["name", name],
    ["active", active ? "yes" : "no"],
    ...(isRemoteProfile(shown)
      ? ([
          ["url", shown.url],
          ["api key", shown.apiKey],
        ] as Array<[string, string]>)
      : ([["state dir", shown.stateDir ?? "(configured)"]] as Array<[string, string]>)),
  ];
  return rows.map(([k, v]) => `${k.padEnd(10)} ${v}`).join("\n") + "\n";
}

function readKey(file: string): string {
  let text: string;
  try {
    text = readFileSync(file === "-" ? 0 : file, "utf8");
  } catch (err) {
    throw new InvalidArgumentError(`cannot read the API key file ${file}: ${(err as Error).message}`, {
      cause: err,
    });
  }
  return text.trim();
}

interface AddFlags {
  url?: string;
  apiKey?: string;
  apiKeyFile?: string;
  local?: boolean;
  stateDir?: string;
  force?: boolean;
  use?: boolean;
  json?: boolean;
}

function profileOf(f: AddFlags): Profile {
  if (f.local) {
    if (f.url || f.apiKey || f.apiKeyFile)
      throw new InvalidArgumentError("--local takes no --url or --api-key", {
        hint: "see `warren profile add --help`",
      });
    return f.stateDir ? { local: true, stateDir: resolve(f.stateDir) } : { local: true };
  }
  if (!f.url)
    throw new InvalidArgumentError("give --url URL with --api-key or --api-key-file, or --local", {
      hint: "see `warren profile add --help`",
    });
  if (f.stateDir)
    throw new InvalidArgumentError("--state-dir goes with --local", {
      hint: "see `warren profile add --help`",
    });
  if ((f.apiKey === undefined) === (f.apiKeyFile === undefined)) {
    throw new InvalidArgumentError("give exactly one of --api-key and --api-key-file", {
      hint: "see `warren profile add --help`",
    });
  }
  return { url: f.url, apiKey: f.apiKey ?? readKey(f.apiKeyFile!) };
}

export function profileCommand(): Command {
  const cmd = new Command("profile").description(
    "manage backend profiles (which Warren the CLI and SDK use)",
  );

  withJson(cmd.command("ls").description("list profiles (API keys redacted)")).action(
    async (f: { json?: boolean }) =>
      profileVerb(f.json, () => {
        const { path, profiles, activeProfile } = readProfiles();
        const names = Object.keys(profiles).sort();
        if (f.json) {
          return printJson({
            path,
            activeProfile,
            profiles: names.map((name) => ({
              name,
              active: name === activeProfile,
              ...redactProfile(profiles[name]),
            })),
          });
        }
        if (!names.length) {
          process.stdout.write(
            `no profiles in ${path}; local Warren is used (add one with \`warren profile add\`)\n`,
          );
          return;
        }
        process.stdout.write(
          table(
            ["ACTIVE", "NAME", "TARGET", "API KEY"],
            names.map((n) => {
              const p = redactProfile(profiles[n]);
              return [n === activeProfile ? "*" : "", n, target(p), isRemoteProfile(p) ? p.apiKey : "-"];
            }),
          ),
        );
      }),
  );

  withJson(
    cmd
      .command("show")
      .description("show a profile; without NAME, which backend is used now and which rule picked it")
      .argument("[name]"),
  ).action(async (name: string | undefined, f: { json?: boolean }) =>
    profileVerb(f.json, () => {
      const { activeProfile } = readProfiles();
      if (name !== undefined) {
        const p = getProfile(name);
        if (f.json) return printJson({ name, active: name === activeProfile, ...redactProfile(p) });
        process.stdout.write(describe(name, p, name === activeProfile));
        return;
      }
      const plan = planBackend();
      const shown = plan.profile === undefined ? undefined : redactProfile(getProfile(plan.profile));
      if (f.json) {
        return printJson({
          source: plan.source,
          profile: plan.profile ?? null,
          description: plan.description,
          ...shown,
        });
      }
      process.stdout.write(`backend    ${plan.description}\nrule       ${plan.source}\n`);
    }),
  );

  withJson(
    cmd
      .command("use")
      .description("make a profile the active one (--clear: none, local Warren)")
      .argument("[name]")
      .option("--clear", "clear the active profile"),
  ).action(async (name: string | undefined, f: { clear?: boolean; json?: boolean }) =>
    profileVerb(f.json, () => {
      if ((name === undefined) === !f.clear) throw new InvalidArgumentError("give a profile NAME or --clear");
      const set = useProfile(f.clear ? null : name!);
      if (f.json) return printJson({ activeProfile: set.activeProfile });
      process.stdout.write(set.activeProfile ? `using ${set.activeProfile}\n` : "no active profile\n");
    }),
  );

  withJson(
    cmd
      .command("add")
      .description("add a profile: a server (--url and a key) or local Warren (--local)")
      .argument("<name>")
      .option("--url <url>", "server URL, e.g. http://127.0.0.1:7377")
      .option("--api-key <key>", "API key (visible in the process list and shell history)")
      .option("--api-key-file <file>", "read the API key from a file (- for stdin)")
      .option("--local", "local Warren in this process")
      .option("--state-dir <dir>", "state directory of a --local profile")
      .option("--force", "replace a profile of the same name")
      .option("--use", "make it the active profile"),
  ).action(async (name: string, f: AddFlags) =>
    profileVerb(f.json, () => {
      const profile = profileOf(f);
      const set = addProfile(name, profile, { replace: f.force, activate: f.use });
      const active = set.activeProfile === name;
      if (f.json) return printJson({ name, active, ...redactProfile(profile) });
      process.stdout.write(`added ${name} (${target(profile)})${active ? ", active" : ""}\n`);
    }),
  );

  withJson(cmd.command("rm").description("remove a profile").argument("<name>")).action(
    async (name: string, f: { json?: boolean }) =>
      profileVerb(f.json, () => {
        removeProfile(name);
        if (f.json) return printJson({ removed: name });
        process.stdout.write(`removed ${name}\n`);
      }),
  );
  return cmd;
}
