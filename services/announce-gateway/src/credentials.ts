// The credentials of private mode as each frontend carries them
// (docs/policy.md): HTTP in the route and the `jwt` query parameter, UDP in
// BEP 41 URL data.

/**
 * The passkey and jwt of BEP 41 URL data: `/announce/<passkey>`, optionally
 * followed by `?jwt=<token>` (a tracker URL `udp://host:port/announce/<passkey>?jwt=...`
 * is sent as URL data by libtorrent-style clients). The passkey is the last
 * path segment when the path has two or more.
 */
export function parseUrlData(urlData: string | undefined): {
  passkey: string | undefined;
  jwt: string | undefined;
} {
  if (urlData === undefined) return { passkey: undefined, jwt: undefined };
  const q = urlData.indexOf('?');
  const path = q === -1 ? urlData : urlData.slice(0, q);
  const slash = path.lastIndexOf('/');
  const passkey = slash > 0 && slash < path.length - 1 ? path.slice(slash + 1) : undefined;
  return { passkey, jwt: q === -1 ? undefined : queryParam(urlData.slice(q + 1), 'jwt') };
}

/** One parameter of a raw query string, percent-decoded; undefined when absent. */
export function queryParam(query: string, name: string): string | undefined {
  let i = 0;
  while (i <= query.length) {
    let amp = query.indexOf('&', i);
    if (amp === -1) amp = query.length;
    if (
      amp - i > name.length &&
      query.charCodeAt(i + name.length) === 0x3d &&
      query.startsWith(name, i)
    ) {
      const value = query.slice(i + name.length + 1, amp);
      try {
        return decodeURIComponent(value.replaceAll('+', ' '));
      } catch {
        // Malformed escapes: verification fails on the raw text.
        return value;
      }
    }
    i = amp + 1;
  }
  return undefined;
}
