/**
 * The error type of serve/'s request handling: thrown anywhere while answering a request, it becomes
 * the JSON response `{"error": {"code", "message"}}` with its status and headers.
 * @module
 */

/** An error that becomes a JSON response. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

/** A 400 invalid_request with this message. */
export function invalidRequest(message: string): HttpError {
  return new HttpError(400, "invalid_request", message);
}

/** The value's kind for an error message: "null", "an array", "an object", or `string "abc"`. */
export function describe(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  return typeof value === "object" ? "an object" : `${typeof value} ${JSON.stringify(value)}`.slice(0, 60);
}

/** 413 too_many_texts when a list of `what` holds more than `max` entries. */
export function checkCount(what: string, count: number, max: number): void {
  if (count > max) {
    throw new HttpError(
      413,
      "too_many_texts",
      `${what} has ${count} entries, over the limit of ${max} (MAX_TEXTS); split the request`,
    );
  }
}
