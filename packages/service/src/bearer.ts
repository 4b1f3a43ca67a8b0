// Bearer tokens of the services' HTTP APIs (storage-api's API, a gateway's
// policy admin API), compared in constant time: both sides are SHA-256
// digests of equal length, so the comparison time says nothing about the
// token.
import { createHash, timingSafeEqual } from 'node:crypto';

function digest(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}

/** The token an `Authorization: Bearer <token>` header presents, as a digest ('' when there is none). */
export function presentedToken(authorization: string | undefined): Buffer {
  return digest(
    typeof authorization === 'string' && authorization.startsWith('Bearer ')
      ? authorization.slice(7)
      : '',
  );
}

/** A configured token; `matches` takes what presentedToken() made of a request's header. */
export function bearerToken(token: string): { matches(presented: Buffer): boolean } {
  const expected = digest(token);
  return { matches: (presented) => timingSafeEqual(presented, expected) };
}
