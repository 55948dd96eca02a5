/**
 * The few commands the fake driver understands, enough for the conformance suite and for fast
 * tests of the service and front ends: true, false, echo, cat, pwd, printenv, sleep, and `sh -c`
 * with `exit N`, `echo WORDS [> FILE | >&2]` and `cat FILE`, joined by `;` or `&&`.
 */

/** In-memory files of one workspace, keyed by absolute sandbox path. */
export type FakeFiles = Map<string, string>;

/** What a fake command sees. */
export interface FakeContext {
  cwd: string;
  env: Record<string, string>;
  stdin: string;
  files: FakeFiles;
}

/** What a fake command produces; `sleepMs` asks the caller to wait before finishing. */
export interface FakeResult {
  exitCode: number;
  stdout: string;
  stderr: string;
  sleepMs: number;
}

const resolvePath = (cwd: string, p: string): string =>
  p.startsWith("/") ? p : `${cwd.replace(/\/$/, "")}/${p}`;

function unquote(word: string): string {
  return word.replace(/^'(.*)'$/, "$1").replace(/^"(.*)"$/, "$1");
}

function runOne(argv: string[], ctx: FakeContext): FakeResult {
  const ok = (stdout = "", stderr = "", exitCode = 0, sleepMs = 0): FakeResult => ({
    exitCode,
    stdout,
    stderr,
    sleepMs,
  });
  const [cmd, ...args] = argv;
  switch (cmd) {
    case "true":
      return ok();
    case "false":
      return ok("", "", 1);
    case "echo":
      return ok(args.join(" ") + "\n");
    case "pwd":
      return ok(ctx.cwd + "\n");
    case "printenv": {
      const v = ctx.env[args[0] ?? ""];
      return v === undefined ? ok("", "", 1) : ok(v + "\n");
    }
    case "sleep":
      return ok("", "", 0, Number(args[0]) * 1000);
    case "cat": {
      if (args.length === 0) return ok(ctx.stdin);
      const content = ctx.files.get(resolvePath(ctx.cwd, args[0]));
      return content === undefined ? ok("", `cat: ${args[0]}: No such file or directory\n`, 1) : ok(content);
    }
    case "sh":
      if (args[0] === "-c" && args[1] !== undefined) return runScript(args[1], ctx);
      return ok("", "sh: the fake driver supports only sh -c\n", 2);
    default:
      return ok("", `${cmd}: command not found\n`, 127);
  }
}

function runStatement(stmt: string, ctx: FakeContext): FakeResult {
  const exit = /^exit\s+(\d+)$/.exec(stmt);
  if (exit) return { exitCode: Number(exit[1]), stdout: "", stderr: "", sleepMs: 0 };
  const redirect = /^(.*?)\s*(>>|>)\s*(&2|\S+)$/.exec(stmt);
  const words = (redirect ? redirect[1] : stmt).split(/\s+/).filter(Boolean).map(unquote);
  const r = runOne(words, ctx);
  if (!redirect) return r;
  if (redirect[3] === "&2") return { ...r, stdout: "", stderr: r.stderr + r.stdout };
  const path = resolvePath(ctx.cwd, redirect[3]);
  const before = redirect[2] === ">>" ? (ctx.files.get(path) ?? "") : "";
  ctx.files.set(path, before + r.stdout);
  return { ...r, stdout: "" };
}

/** Runs a tiny shell script: statements joined by `;` or `&&`. */
function runScript(script: string, ctx: FakeContext): FakeResult {
  const total: FakeResult = { exitCode: 0, stdout: "", stderr: "", sleepMs: 0 };
  for (const part of script.split(/(;|&&)/)) {
    if (part === ";" || part === "&&") {
      if (part === "&&" && total.exitCode !== 0) break;
      continue;
    }
    if (!part.trim()) continue;
    const r = runStatement(part.trim(), ctx);
    total.exitCode = r.exitCode;
    total.stdout += r.stdout;
    total.stderr += r.stderr;
    total.sleepMs += r.sleepMs;
    if (/^exit\s/.test(part.trim())) break;
  }
  return total;
}

/** Runs one fake command. */
export function runFakeCommand(argv: string[], ctx: FakeContext): FakeResult {
  return runOne(argv, ctx);
}
