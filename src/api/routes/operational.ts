import type { FastifyInstance } from 'fastify';
import { schemaServes } from '../../db/migrate.ts';
import type { Runtime } from '../../runtime.ts';
import { problem, sendProblem } from '../problem.ts';

/** Health, readiness and metrics: unauthenticated, outside /v1, hidden from the OpenAPI document. */
export function registerOperationalRoutes(app: FastifyInstance, runtime: Runtime): void {
  app.get('/healthz', { schema: { hide: true } }, async () => ({ status: 'ok' }));

  app.get('/readyz', { schema: { hide: true } }, async (_request, reply) => {
    if (!(await schemaServes(runtime.pool)))
      return sendProblem(
        reply,
        problem(503, 'service-unavailable', 'database unreachable or schema not current'),
      );
    return { status: 'ready' };
  });

  app.get('/metrics', { schema: { hide: true } }, async (_request, reply) => {
    await runtime.refreshProjectionLag().catch(() => undefined);
    return reply.type(runtime.metrics.registry.contentType).send(await runtime.metrics.registry.metrics());
  });
}
