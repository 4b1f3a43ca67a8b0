// A log destination that keeps what a logger wrote, for tests that assert
// on log lines: give `stream` to pino (`pino({ level: 'info' }, stream)`)
// and read `lines`, each JSON line parsed, in the order written.
import { Writable } from 'node:stream';

export interface CapturedLogs<Line> {
  lines: Line[];
  stream: Writable;
}

export function captureLogs<Line = Record<string, unknown>>(): CapturedLogs<Line> {
  const lines: Line[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const l of chunk.toString('utf8').split('\n'))
        if (l !== '') lines.push(JSON.parse(l) as Line);
      done();
    },
  });
  return { lines, stream };
}
