// Which address a peer is announced under (docs/decisions.md "Tracker semantics"): the socket's,
// unless the socket peer is a trusted proxy, then X-Forwarded-For (rightmost
// entry that is not itself a trusted proxy) or X-Real-IP; the `ip` parameter
// only when the operator allows it. IPv4-mapped IPv6 addresses are IPv4.
import ipaddr from 'ipaddr.js';
import { addressToBytes } from '@shoal/protocol';
import type { Family } from '@shoal/protocol';

export interface PeerAddress {
  family: Family;
  /** 4 or 16 bytes. */
  bytes: Buffer;
}

export interface AddressSources {
  socket: string | undefined;
  forwardedFor: string | string[] | undefined;
  realIp: string | string[] | undefined;
  ipParam: string | undefined;
}

type Range = [ipaddr.IPv4 | ipaddr.IPv6, number];

export type ClientAddressResolver = (sources: AddressSources) => PeerAddress | undefined;

export function parseTrustedProxies(list: readonly string[]): Range[] {
  return list.map((entry) => {
    if (entry.includes('/')) {
      const [addr, bits] = ipaddr.parseCIDR(entry);
      return [
        unmap(addr),
        addr.kind() === 'ipv6' && unmap(addr).kind() === 'ipv4' ? bits - 96 : bits,
      ];
    }
    const addr = unmap(ipaddr.parse(entry));
    return [addr, addr.kind() === 'ipv4' ? 32 : 128];
  });
}

function unmap(addr: ipaddr.IPv4 | ipaddr.IPv6): ipaddr.IPv4 | ipaddr.IPv6 {
  return addr.kind() === 'ipv6' && (addr as ipaddr.IPv6).isIPv4MappedAddress()
    ? (addr as ipaddr.IPv6).toIPv4Address()
    : addr;
}

function inRanges(text: string, ranges: readonly Range[]): boolean | undefined {
  if (!ipaddr.isValid(text)) return undefined;
  const addr = ipaddr.process(text);
  for (const range of ranges) {
    if (range[0].kind() === addr.kind() && addr.match(range)) return true;
  }
  return false;
}

function firstHeader(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value.join(',') : value;
}

/** The client named by a trusted proxy's headers, or undefined when they name none. */
function fromProxyHeaders(
  sources: AddressSources,
  ranges: readonly Range[],
): PeerAddress | undefined {
  const forwarded = firstHeader(sources.forwardedFor);
  if (forwarded !== undefined) {
    const hops = forwarded.split(',');
    for (let i = hops.length - 1; i >= 0; i--) {
      const hop = (hops[i] ?? '').trim();
      const trusted = inRanges(hop, ranges);
      if (trusted === undefined) break;
      if (!trusted || i === 0) return addressToBytes(hop);
    }
  }
  const realIp = firstHeader(sources.realIp)?.trim();
  return realIp === undefined ? undefined : addressToBytes(realIp);
}

export function createClientAddressResolver(options: {
  trustedProxies: readonly string[];
  allowIpParam: boolean;
}): ClientAddressResolver {
  const ranges = parseTrustedProxies(options.trustedProxies);
  const allowIpParam = options.allowIpParam;
  return (sources) => {
    if (allowIpParam && sources.ipParam !== undefined) {
      const claimed = addressToBytes(sources.ipParam);
      if (claimed !== undefined) return claimed;
    }
    if (sources.socket === undefined) return undefined;
    if (ranges.length > 0 && inRanges(sources.socket, ranges) === true) {
      const forwarded = fromProxyHeaders(sources, ranges);
      if (forwarded !== undefined) return forwarded;
    }
    return addressToBytes(sources.socket);
  };
}
