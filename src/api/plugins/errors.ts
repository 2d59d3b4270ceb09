import type { ConnectionError, FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Socket } from 'node:net';
import { problem, problemHttpResponse, sendProblem, type Problem } from '../problem.ts';
import { isTransientDatabaseError, loggableError } from '../../db/pool.ts';
import { EventStoreBusyError } from '../../eventstore/port.ts';
import { CommandDeadlineError } from '../member-command.ts';
import type { Metrics } from './metrics.ts';

/**
 * The warn line logged with each kind of 503 + Retry-After, by the cause it names: operators search for
 * them and the chaos harness counts them (scripts/chaos/harness.ts), so they are spelled once, here.
 */
export const RETRY_LATER_LOG_MESSAGES = {
  database: 'request failed: database unavailable',
  'event-store-busy': 'request failed: event store busy',
  deadline: 'request answered at its deadline',
} as const;

/** Seconds a client is asked to wait before it retries a request the database could not serve. */
export const DATABASE_RETRY_AFTER_SECONDS = 1;

interface ValidationEntry {
  keyword?: string;
  instancePath?: string;
  message?: string;
  params?: Record<string, unknown>;
}

/**
 * Every error leaves as problem+json: validation, malformed JSON, wrong content type, oversized bodies,
 * unknown routes, rate limits, shutdown, a database that cannot serve the request (503 with Retry-After),
 * and bugs (a 500 with no stack trace or SQL text; the log has the detail).
 */
export function registerErrorHandling(app: FastifyInstance, metrics: Metrics): void {
  /** Commands that threw count in ledger_command_outcomes_total too (member-command.ts counts the rest). */
  const countCommand = (request: FastifyRequest, outcome: string) => {
    const route = request.routeOptions.url;
    if (request.method === 'POST' && route?.startsWith('/v1/') === true)
      metrics.commandOutcomes.labels(route, outcome).inc();
  };
  // Once close() has begun, a request still reaching the server (on a kept-alive or pipelined connection)
  // is turned away before authentication so the caller retries on another instance. fastify's own
  // answer (return503OnClosing) has a fixed body, so server.ts turns it off and this answers instead.
  let closing = false;
  app.addHook('preClose', async () => {
    closing = true;
  });
  // Callback style, not async: every request passes here, and this costs it no promise.
  app.addHook('onRequest', (_request, reply, done) => {
    if (!closing) return done();
    // Answering from a hook ends the request there; done() is not called.
    void sendProblem(reply, problem(503, 'service-unavailable', 'the server is shutting down; retry'));
  });

  app.setNotFoundHandler((request, reply) =>
    sendProblem(
      reply,
      problem(404, 'not-found', `no route for ${request.method} ${request.url.split('?')[0]}`),
    ),
  );

  app.setErrorHandler((error: FastifyError, request, reply) => {
    if (error.validation) {
      const context = error.validationContext ?? 'body';
      const errors = (error.validation as ValidationEntry[]).flatMap((entry) => {
        const path = [context, ...(entry.instancePath ?? '').split('/').filter((p) => p !== '')];
        // An unknown field is reported on its own path, so the list names every offending field.
        const unknownKeys = entry.keyword === 'unrecognized_keys' ? entry.params?.['keys'] : undefined;
        if (Array.isArray(unknownKeys) && unknownKeys.length > 0) {
          return unknownKeys.map((key) => ({
            path: [...path, String(key)].join('.'),
            message: 'unknown field',
          }));
        }
        return [{ path: path.join('.'), message: entry.message ?? 'invalid' }];
      });
      const first = errors[0];
      return sendProblem(
        reply,
        problem(400, 'validation-failed', first ? `${first.path}: ${first.message}` : 'invalid request', {
          errors,
        }),
      );
    }
    switch (error.code) {
      case 'FST_ERR_CTP_INVALID_JSON_BODY':
      case 'FST_ERR_CTP_EMPTY_JSON_BODY':
        return sendProblem(
          reply,
          problem(400, 'validation-failed', 'the body is not valid JSON', {
            errors: [{ path: 'body', message: 'malformed JSON' }],
          }),
        );
      case 'FST_ERR_CTP_BODY_TOO_LARGE':
        return sendProblem(reply, problem(413, 'payload-too-large', 'the body exceeds the size limit'));
      case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
        return sendProblem(reply, problem(415, 'unsupported-media-type', 'send application/json'));
      case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
        return sendProblem(
          reply,
          problem(400, 'validation-failed', 'the body does not match its Content-Length', {
            errors: [{ path: 'headers.content-length', message: 'does not match the body' }],
          }),
        );
      default:
        break;
    }
    if (error.statusCode === 429) {
      return sendProblem(reply, problem(429, 'rate-limited', 'too many requests for this key; slow down'));
    }
    if (error.statusCode !== undefined && error.statusCode >= 400 && error.statusCode < 500) {
      return sendProblem(
        reply,
        problem(error.statusCode, 'validation-failed', 'the request could not be read', {
          errors: [{ path: 'request', message: 'unreadable request' }],
        }),
      );
    }
    if (error instanceof EventStoreBusyError) {
      countCommand(request, 'service-unavailable');
      request.log.warn({ err: error }, RETRY_LATER_LOG_MESSAGES['event-store-busy']);
      return retryLater(
        reply,
        'the ledger is busy and wrote nothing for this request; send it again (with the same Idempotency-Key)',
      );
    }
    if (error instanceof CommandDeadlineError) {
      countCommand(request, 'deadline');
      request.log.warn({ deadlineMs: error.deadlineMs }, RETRY_LATER_LOG_MESSAGES.deadline);
      return retryLater(
        reply,
        `the command did not finish within ${error.deadlineMs} ms and may still be recorded: send it again with the same Idempotency-Key, which answers what was recorded`,
      );
    }
    if (isTransientDatabaseError(error)) {
      // Not a bug: the database link broke, the server is restarting, or a lock was not had in time. A
      // 503 tells the till to retry (a 500 would page an operator for a network blip); the log keeps the
      // cause at warn.
      countCommand(request, 'service-unavailable');
      request.log.warn({ err: loggableError(error) }, RETRY_LATER_LOG_MESSAGES.database);
      return retryLater(
        reply,
        request.method === 'POST'
          ? 'the database could not complete this request; it may or may not have taken effect: send it again with the same Idempotency-Key, which answers what was recorded'
          : 'the database could not complete this request; retry',
      );
    }
    countCommand(request, 'internal-error');
    request.log.error({ err: loggableError(error) }, 'request failed');
    return sendProblem(
      reply,
      problem(500, 'internal-error', `internal error; quote request id ${request.id}`),
    );
  });
}

/** 503 service-unavailable with Retry-After: nothing was wrong with the request; send it again. */
function retryLater(reply: FastifyReply, detail: string): FastifyReply {
  reply.header('retry-after', String(DATABASE_RETRY_AFTER_SECONDS));
  return sendProblem(reply, problem(503, 'service-unavailable', detail));
}

/**
 * Errors fastify raises before routing (a URL that does not decode, a path parameter past the router's
 * length limit) never reach the error handler; passed as the `frameworkErrors` option they answer as
 * problem+json like every other error.
 */
export function frameworkErrorProblem(
  error: FastifyError,
  request: FastifyRequest,
  reply: FastifyReply,
): FastifyReply {
  if (error.code === 'FST_ERR_BAD_URL' || error.code === 'FST_ERR_MAX_PARAM_LENGTH') {
    return sendProblem(
      reply,
      problem(400, 'validation-failed', 'the URL could not be read', {
        errors: [
          {
            path: 'url',
            message: error.code === 'FST_ERR_BAD_URL' ? 'not a valid URL' : 'a path segment is too long',
          },
        ],
      }),
    );
  }
  request.log.error({ err: loggableError(error) }, 'request failed before routing');
  return sendProblem(reply, problem(500, 'internal-error', `internal error; quote request id ${request.id}`));
}

/**
 * Errors Node's HTTP server raises on the connection itself never reach a route: a request not received in
 * full within the request timeout, headers past Node's size limit, bytes that are not HTTP. Passed as the
 * `clientErrorHandler` option (bound to the fastify instance), they answer problem+json on the raw socket,
 * which is then closed.
 */
export function clientErrorProblem(this: FastifyInstance, error: ConnectionError, socket: Socket): void {
  // A reset or destroyed connection has no one left to answer.
  if (error.code === 'ECONNRESET' || socket.destroyed) return;
  let value: Problem;
  if (error.code === 'ERR_HTTP_REQUEST_TIMEOUT') {
    const timeoutMs = this.server.requestTimeout;
    value = problem(408, 'request-timeout', `the request was not received in full within ${timeoutMs} ms`);
  } else if (error.code === 'HPE_HEADER_OVERFLOW') {
    value = problem(431, 'request-headers-too-large', 'the request headers exceed the size limit');
  } else {
    value = problem(400, 'validation-failed', 'the request is not valid HTTP', {
      errors: [{ path: 'request', message: 'malformed HTTP' }],
    });
  }
  this.log.debug({ err: error }, 'client error');
  if (socket.writable) socket.write(problemHttpResponse(value));
  socket.destroy();
}
