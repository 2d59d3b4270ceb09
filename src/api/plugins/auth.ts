import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { KeyVerifier } from '../../auth/keys.ts';
import type { Principal, Role } from '../../auth/roles.ts';
import { problem, sendProblem } from '../problem.ts';

declare module 'fastify' {
  interface FastifyRequest {
    principal: Principal | null;
  }
  interface FastifyContextConfig {
    /** Roles allowed on the route; a route without it is public (health, docs, metrics). */
    roles?: readonly Role[];
  }
}

/** Authenticates every /v1 request by its bearer key and checks the route's roles: 401, then 403. */
export function registerAuth(app: FastifyInstance, keys: KeyVerifier): void {
  app.decorateRequest('principal', null);
  app.addHook('onRequest', async (request, reply) => {
    const roles = request.routeOptions.config.roles;
    if (roles === undefined) return;
    const principal = await authenticate(request, keys);
    if (principal === null) {
      return sendProblem(reply, problem(401, 'unauthorized', 'send Authorization: Bearer <key>'));
    }
    if (!roles.includes(principal.role)) {
      return sendProblem(reply, problem(403, 'forbidden', `role ${principal.role} may not do this`));
    }
    request.principal = principal;
  });
}

async function authenticate(request: FastifyRequest, keys: KeyVerifier): Promise<Principal | null> {
  const header = request.headers.authorization;
  if (typeof header !== 'string') return null;
  const match = /^Bearer ([\x21-\x7e]{1,256})$/.exec(header);
  return match ? keys.verify(match[1]!) : null;
}

/** The principal of an authenticated route (the hook guarantees it). */
export function principalOf(request: FastifyRequest): Principal {
  if (request.principal === null) throw new Error('route without roles asked for a principal');
  return request.principal;
}

/** A pos key acts only for its stores; other roles are not store-bound. */
export function mayActForStore(principal: Principal, storeId: string): boolean {
  return principal.role !== 'pos' || principal.stores.includes(storeId);
}
