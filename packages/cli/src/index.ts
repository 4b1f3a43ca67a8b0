// @shoal/cli: shoalctl as a function (bin/shoalctl.ts is the process wrapper).
export { run } from './run.ts';
export type { Output, RunOptions } from './run.ts';
export { cliErrors, CliError, ApiAnswerError } from './errors.ts';
export type { CliErrorCode } from './errors.ts';
export { parseDuration } from './duration.ts';
export { parsePasskeyCsv, parseValueFile } from './files.ts';
