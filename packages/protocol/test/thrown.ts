// What a codec refuses with, for the codecs' own tests: a refusal is a
// ProtocolError, and any other throw is a bug the test must not swallow.
import { isProtocolError, type ProtocolError, type ProtocolErrorCode } from '../src/errors.ts';

/** The ProtocolError that fn throws; fails when fn returns or throws anything else. */
export function thrown(fn: () => unknown): ProtocolError {
  try {
    fn();
  } catch (err) {
    if (isProtocolError(err)) return err;
    throw err;
  }
  throw new Error('expected a ProtocolError');
}

/** The code of the ProtocolError that fn throws, or 'no error' when it returns. */
export function codeOf(fn: () => unknown): ProtocolErrorCode | 'no error' {
  try {
    fn();
  } catch (err) {
    if (isProtocolError(err)) return err.code;
    throw err;
  }
  return 'no error';
}
