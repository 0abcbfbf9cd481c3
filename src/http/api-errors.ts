// The last word of faultline's HTTP APIs (the control plane's, a sidecar's admin listener): every
// error is the API's own JSON body with a code — 4xx when the request is at fault (a body over the
// limit, unparseable JSON, an unknown route), 500 naming no internals (the error goes to the log).
import type { ErrorRequestHandler, Express, RequestHandler } from 'express';
import { ErrorCode } from '../errors.ts';
import type { Logger } from '../telemetry/log.ts';

/** What express and its body parsers put on the errors they pass on (http-errors). */
interface HttpError {
  status?: number;
  statusCode?: number;
  type?: string;
  limit?: number;
  length?: number;
}

/** Unknown routes, then every error: added after an API's routes. */
export function endWithJsonErrors(app: Express, log: Logger): void {
  app.use(notFound);
  app.use(jsonErrors(log));
}

const notFound: RequestHandler = (req, res) => {
  res.status(404).json({ error: `no route ${req.method} ${req.path}`, code: ErrorCode.NotFound });
};

function jsonErrors(log: Logger): ErrorRequestHandler {
  return (error: unknown, req, res, next) => {
    // The head went out (a stream that failed midway): nothing left to answer with; express closes it.
    if (res.headersSent) return next(error);
    const { status, body } = answerTo(error);
    if (status >= 500) log.error({ err: error, method: req.method, path: req.path }, 'API request failed');
    res.status(status).json(body);
  };
}

function answerTo(error: unknown): { status: number; body: { error: string; code: string } } {
  const http = (typeof error === 'object' && error !== null ? error : {}) as HttpError;
  const status = http.status ?? http.statusCode ?? 500;
  if (!(status >= 400 && status < 500)) return { status: 500, body: { error: 'internal error (see the log)', code: ErrorCode.Internal } };
  if (http.type === 'entity.too.large') {
    const size = http.length === undefined ? '' : ` (${http.length} bytes)`;
    return { status, body: { error: `the request body${size} is over this API's limit of ${http.limit} bytes`, code: ErrorCode.BodyTooLarge } };
  }
  if (http.type === 'entity.parse.failed') return { status, body: { error: `the body is not valid JSON: ${(error as Error).message}`, code: ErrorCode.BadRequest } };
  return { status, body: { error: (error as Error).message, code: ErrorCode.BadRequest } };
}
