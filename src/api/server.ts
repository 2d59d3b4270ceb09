import fastifySwagger from '@fastify/swagger';
import fastifySwaggerUi from '@fastify/swagger-ui';
import rateLimit from '@fastify/rate-limit';
import Fastify, { LogController, type FastifyInstance } from 'fastify';
import {
  jsonSchemaTransform,
  jsonSchemaTransformObject,
  serializerCompiler,
  validatorCompiler,
  type ZodTypeProvider,
} from 'fastify-type-provider-zod';
import { randomUUID } from 'node:crypto';
import type { Runtime } from '../runtime.ts';
import { registerAuth } from './plugins/auth.ts';
import { clientErrorProblem, frameworkErrorProblem, registerErrorHandling } from './plugins/errors.ts';
import { registerOperationalRoutes } from './routes/operational.ts';
import { registerMemberRoutes } from './routes/members.ts';
import { registerPointsRoutes } from './routes/points.ts';
import { registerReadRoutes } from './routes/reads.ts';

/** Request bodies above this are refused with 413 (an order of ORDER_LINES_MAX lines fits well inside). */
export const REQUEST_BODY_BYTES_MAX = 256 * 1024;
/**
 * A request not received in full (headers and body) within this answers 408 and its connection is closed.
 * A command that has started runs on: it commits whole or writes nothing.
 */
export const REQUEST_TIMEOUT_MS = 10_000;
/** Node looks for requests past their timeout this often; its default, 30 s, would make 10 s up to 40 s. */
const REQUEST_TIMEOUT_CHECK_INTERVAL_MS = 1_000;
/**
 * A caller's X-Request-Id is kept as the request id (and the events' correlation id) only when it looks
 * like an id; anything else, e.g. 70 KB of text that would not fit the event metadata, gets a fresh uuid.
 */
const REQUEST_ID_PATTERN = /^[\x21-\x7e]{1,128}$/;
/** Requests per key per minute before 429; a till sends a handful per checkout. */
export const RATE_LIMIT_REQUESTS_PER_MINUTE_DEFAULT = 6_000;

export interface ServerOptions {
  logLevel?: string;
  /** Where the log lines go (standard output when absent); tests read them from here. */
  logStream?: { write(line: string): void };
  rateLimitPerMinute?: number;
  requestTimeoutMs?: number;
}

export async function buildServer(runtime: Runtime, options: ServerOptions = {}): Promise<FastifyInstance> {
  const requestTimeoutMs = options.requestTimeoutMs ?? REQUEST_TIMEOUT_MS;
  const app = Fastify({
    logger: {
      level: options.logLevel ?? 'info',
      ...(options.logStream === undefined ? {} : { stream: options.logStream }),
    },
    // One access line per request, written in the onResponse hook below, instead of fastify's two: the
    // second cost about a fifth of the API's throughput at info level (bench:api: 1,713 against 2,183
    // commands/s), and both carried the raw URL, whose query string may hold a member's phone number
    // (GET /v1/members?phone=).
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: REQUEST_BODY_BYTES_MAX,
    requestTimeout: requestTimeoutMs,
    http: {
      // Node's default headers timeout (60 s) is longer than the request timeout, and Node then swaps the two:
      // the headers would get requestTimeoutMs and the body 60 s.
      headersTimeout: requestTimeoutMs,
      connectionsCheckingInterval: REQUEST_TIMEOUT_CHECK_INTERVAL_MS,
    },
    // The request id travels into the event metadata as the correlation id.
    requestIdHeader: false,
    genReqId: (raw) => {
      const header = raw.headers['x-request-id'];
      return typeof header === 'string' && REQUEST_ID_PATTERN.test(header) ? header : randomUUID();
    },
    // registerErrorHandling answers requests arriving during shutdown with a 503 problem instead.
    return503OnClosing: false,
    frameworkErrors: frameworkErrorProblem,
    clientErrorHandler: clientErrorProblem,
  }).withTypeProvider<ZodTypeProvider>();
  // Bodies are JSON only: anything else is 415, not a string handed to the schema.
  app.removeContentTypeParser('text/plain');
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);

  await app.register(fastifySwagger, {
    openapi: {
      info: {
        title: 'points-ledger',
        version: '1',
        description: 'POS, auditor and finance API of the points ledger (CONTRACT.md).',
      },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
      security: [{ bearer: [] }],
    },
    transform: jsonSchemaTransform,
    // Schemas with an id (the Problem every error answers) become components, referenced from each route.
    transformObject: jsonSchemaTransformObject,
  });
  await app.register(fastifySwaggerUi, { routePrefix: '/docs' });

  registerErrorHandling(app, runtime.metrics);
  registerAuth(app, runtime.keys);
  await app.register(rateLimit, {
    max: options.rateLimitPerMinute ?? RATE_LIMIT_REQUESTS_PER_MINUTE_DEFAULT,
    timeWindow: 60_000,
    hook: 'preHandler',
    // Per key once authenticated; unauthenticated requests are limited per address.
    keyGenerator: (request) => request.principal?.keyId ?? request.ip,
    allowList: (request) => request.routeOptions.config.roles === undefined,
  });
  app.addHook('onResponse', async (request, reply) => {
    // The route's template (/v1/members/:memberId), never the URL as sent: no query string in the logs.
    const route = request.routeOptions.url ?? 'unknown';
    runtime.metrics.requestDuration
      .labels(request.method, route, String(reply.statusCode))
      .observe(reply.elapsedTime / 1000);
    request.log.info(
      {
        method: request.method,
        route,
        params: request.params,
        statusCode: reply.statusCode,
        responseTimeMs: Math.round(reply.elapsedTime * 10) / 10,
      },
      'request completed',
    );
  });

  registerOperationalRoutes(app, runtime);
  await app.register(
    async (v1) => {
      registerMemberRoutes(v1, runtime);
      registerPointsRoutes(v1, runtime);
      registerReadRoutes(v1, runtime);
    },
    { prefix: '/v1' },
  );
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());
  return app;
}
