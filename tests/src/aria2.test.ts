// The core proof: unmodified aria2 clients, one seeding and one leeching,
// find each other only through Shoal (DHT, LPD and PEX off; for UDP the DHT
// socket is on but has no node to talk to) and the leecher ends up with a
// byte-identical file, over HTTP and over UDP. The Redis and PostgreSQL
// suites call describeAria2Transfer with their store to rerun the same test.
import { describeAria2Transfer, memoryBackend } from './harness/aria2-transfer.ts';

describeAria2Transfer('memory store', memoryBackend);
