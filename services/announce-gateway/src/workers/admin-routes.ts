// The workers on the admin port (docs/workers.md "Admin API"), behind the
// ADMIN_API_TOKEN bearer token like the policy admin API: the list, and a
// terminate that stops one worker at once (a wedged worker; what a crash
// does), after which the supervisor replaces it.
import type { FastifyInstance } from 'fastify';
import { ADMIN_PREFIX } from '@shoal/policy';
import { requireToken } from '../admin.ts';
import { GatewayError, gatewayErrors } from '../errors.ts';
import type { Supervisor } from './supervisor.ts';

export function mountWorkerAdmin(
  app: FastifyInstance,
  token: string,
  supervisor: Supervisor,
): void {
  // eslint-disable-next-line @typescript-eslint/require-await
  void app.register(async (scope) => {
    requireToken(scope, token);
    scope.get(`${ADMIN_PREFIX}/workers`, () => Promise.resolve({ workers: supervisor.list() }));
    scope.post<{ Params: { index: string } }>(
      `${ADMIN_PREFIX}/workers/:index/terminate`,
      async (request, reply) => {
        const index = /^\d{1,4}$/.test(request.params.index) ? Number(request.params.index) : -1;
        if (!supervisor.terminate(index)) {
          const err = new GatewayError('GATEWAY_ERR_NO_SUCH_WORKER');
          return reply.code(404).send({ code: err.code, message: gatewayErrors[err.code].message });
        }
        return reply.code(202).send({ worker: index, terminated: true });
      },
    );
  });
}
