import { describe, expect, it } from 'vitest';
import { parseUrlData, queryParam } from './credentials.ts';

describe('BEP 41 URL data and query parameters', () => {
  it('takes the passkey from the last path segment and jwt from the query', () => {
    expect(parseUrlData(undefined)).toEqual({ passkey: undefined, jwt: undefined });
    expect(parseUrlData('/announce')).toEqual({ passkey: undefined, jwt: undefined });
    expect(parseUrlData('/announce/')).toEqual({ passkey: undefined, jwt: undefined });
    expect(parseUrlData('/announce/abcdefgh12')).toEqual({ passkey: 'abcdefgh12', jwt: undefined });
    expect(parseUrlData('/announce/abcdefgh12?jwt=a.b.c&x=1')).toEqual({
      passkey: 'abcdefgh12',
      jwt: 'a.b.c',
    });
    expect(parseUrlData('/announce?x=1&jwt=a.b.c')).toEqual({ passkey: undefined, jwt: 'a.b.c' });
  });

  it('finds one parameter by exact name, percent-decoded', () => {
    expect(queryParam('', 'jwt')).toBeUndefined();
    expect(queryParam('jwtx=1&xjwt=2', 'jwt')).toBeUndefined();
    expect(queryParam('info_hash=%00&jwt=a%2Eb.c&port=1', 'jwt')).toBe('a.b.c');
    expect(queryParam('jwt=', 'jwt')).toBe('');
    expect(queryParam('jwt=%zz', 'jwt')).toBe('%zz');
  });
});
