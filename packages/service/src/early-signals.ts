// Loaded before a service's main.ts by the images' entrypoint
// (`node --import @shoal/service/early-signals src/main.ts`). In a container
// the service is process 1, and the kernel gives process 1 no default action
// for SIGTERM or SIGINT: until main.ts installs its drain (exitOnSignals,
// after loading its modules, connecting its stores and listening) a stop
// signal would be ignored, and the pod or container killed only when its
// whole grace period has run out (docs/kubernetes.md "Images").
// This listener exits at once while it is the only one, that is, during
// start-up; once exitOnSignals listens too, it leaves the drain to it.
import { constants } from 'node:os';

for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.on(signal, () => {
    if (process.listenerCount(signal) === 1) process.exit(128 + constants.signals[signal]);
  });
}
