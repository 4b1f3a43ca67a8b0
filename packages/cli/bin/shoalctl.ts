#!/usr/bin/env -S node --disable-warning=ExperimentalWarning
// shoalctl: the process wrapper around run() (packages/cli/src/run.ts).
import { run } from '../src/index.ts';

process.exitCode = await run(process.argv.slice(2), {
  env: process.env,
  stdout: process.stdout,
  stderr: process.stderr,
});
