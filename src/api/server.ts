import fastifySwagger from '@fastify/swagger';
import fastifySwaggerUi from '@fastify/swagger-ui';
import rateLimit from '@fastify/rate-limit';
import Fastify, { type FastifyInstance } from 'fastify';
import {
  jsonSchemaTransform,
  serializerCompiler,
  validatorCompiler,
  type ZodTypeProvider,
} from 'fastify-type-provider-zod';
import { randomUUID } from 'node:crypto';
import type { Runtime } from '../runtime.ts';
import { registerAuth } from './plugins/auth.ts';
import { frameworkErrorProblem, registerErrorHandling } from './plugins/errors.ts';
import { registerOperationalRoutes } from './routes/operational.ts';
import { registerMemberRoutes } from './routes/members.ts';
import { registerPointsRoutes } from './routes/points.ts';
import { registerReadRoutes } from './routes/reads.ts';

/** Request bodies above this are refused with 413 (an order of ORDER_LINES_MAX lines fits well inside). */
export const REQUEST_BODY_BYTES_MAX = 256 * 1024;
/** A request still running after this is cut (the command either committed or wrote nothing). */
export const REQUEST_TIMEOUT_MS = 10_000;
/**
 * A caller's X-Request-Id is kept as the request id (and the events' correlation id) only when it looks
 * like an id; anything else, e.g. 70 KB of text that would not fit the event metadata, gets a fresh uuid.
 */
const REQUEST_ID_PATTERN = /^[\x21-\x7e]{1,128}$/;
/** Requests per key per minute before 429; a till sends a handful per checkout. */
export const RATE_LIMIT_REQUESTS_PER_MINUTE_DEFAULT = 6_000;

export interface ServerOptions {
  logLevel?: string;
  rateLimitPerMinute?: number;
}

export async function buildServer(runtime: Runtime, options: ServerOptions = {}): Promise<FastifyInstance> {
  const app = Fastify({
    logger: { level: options.logLevel ?? 'info' },
    bodyLimit: REQUEST_BODY_BYTES_MAX,
    requestTimeout: REQUEST_TIMEOUT_MS,
    // The request id travels into the event metadata as the correlation id.
    requestIdHeader: false,
    genReqId: (raw) => {
      const header = raw.headers['x-request-id'];
      return typeof header === 'string' && REQUEST_ID_PATTERN.test(header) ? header : randomUUID();
    },
    return503OnClosing: true,
    frameworkErrors: frameworkErrorProblem,
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
  });
  await app.register(fastifySwaggerUi, { routePrefix: '/docs' });

  registerErrorHandling(app);
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
    runtime.metrics.requestDuration
      .labels(request.method, request.routeOptions.url ?? 'unknown', String(reply.statusCode))
      .observe(reply.elapsedTime / 1000);
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
