/**
 * Tool results: a success carries the structured value plus a short text; a failure is an MCP
 * tool error (`isError: true`) carrying Warren's code, message, hint and details, as text and as
 * structured `{ error }` content.
 */
import { toWarrenError } from "../core/errors.js";
import type { Extra } from "./support.js";

/** A text content block. */
export type Text = { type: "text"; text: string };
/** What a tool handler returns. */
export type ToolResult = { content: Text[]; structuredContent: Record<string, unknown>; isError?: boolean };

/** A successful result: the structured value and a short text for the model. */
export function ok(value: object, text: string): ToolResult {
  return { content: [{ type: "text", text }], structuredContent: value as Record<string, unknown> };
}

/** A tool error carrying Warren's code, message, hint and details. */
export function toolError(err: unknown): ToolResult {
  const e = toWarrenError(err);
  const text = [`${e.code}: ${e.message}`, e.hint ? `hint: ${e.hint}` : ""].filter(Boolean).join("\n");
  const error = { code: e.code, message: e.message, hint: e.hint, details: e.details };
  return { content: [{ type: "text", text }], structuredContent: { error }, isError: true };
}

/** Calls still running, per set of registered tools (a server waits for them before it closes). */
export type Inflight = Set<Promise<unknown>>;

/** Wraps a handler so any failure becomes a tool error, and tracks it while it runs. */
export function safeIn(inflight: Inflight) {
  return <A>(fn: (args: A, extra: Extra) => Promise<ToolResult>) =>
    async (args: A, extra: Extra): Promise<ToolResult> => {
      const call = fn(args, extra).catch(toolError);
      inflight.add(call);
      try {
        return await call;
      } finally {
        inflight.delete(call);
      }
    };
}

/** Annotations of a tool that changes nothing. */
export const readOnly = { readOnlyHint: true, destructiveHint: false, openWorldHint: false };
/** Annotations of a tool that changes state inside Warren only. */
export const mutating = { readOnlyHint: false, destructiveHint: false, openWorldHint: false };

/** The wrapper `safeIn` returns. */
export type Safe = ReturnType<typeof safeIn>;
