// What HTTP and UDP announces share once decoded: the tracker's rules for
// turning a client's request into a store operation (docs/decisions.md
// "Tracker semantics").
import { isProtocolError, type AnnounceRequest } from '@shoal/protocol';
import { isPolicyError } from '@shoal/policy';
import { isStoreError, type PeerAnnounce } from '@shoal/storage';
import type { PeerAddress } from './client-address.ts';
import { GatewayError, isGatewayError } from './errors.ts';

export interface AnnouncePolicy {
  numWantDefault: number;
  numWantMax: number;
}

export function toPeerAnnounce(
  request: AnnounceRequest,
  peer: PeerAddress,
  policy: AnnouncePolicy,
): PeerAnnounce {
  // A peer on port 0 cannot be dialled; only its departure is worth recording.
  if (request.port === 0 && request.event !== 'stopped')
    throw new GatewayError('GATEWAY_ERR_BAD_PORT');
  const wanted = request.numWant ?? policy.numWantDefault;
  return {
    infoHash: request.infoHash,
    peerId: request.peerId,
    family: peer.family,
    address: peer.bytes,
    port: request.port,
    seeder: request.left === 0n || request.event === 'completed',
    event: request.event,
    numWant:
      wanted < 0 ? policy.numWantDefault : wanted > policy.numWantMax ? policy.numWantMax : wanted,
    withPeerIds: !request.compact && !request.noPeerId,
  };
}

/** The code and client-facing text of anything a handler caught. */
export interface Refusal {
  code: string;
  reason: string;
  /** True when the fault is ours (storage, bug): the client should retry later (BEP 31 `retry in`). */
  ours: boolean;
  /** Not logged per request: the policy cache logs its outage once (POLICY_ERR_NOT_LOADED). */
  quiet?: boolean;
}

export function describeRefusal(err: unknown): Refusal {
  if (isProtocolError(err))
    return { code: err.code, reason: `${err.failureReason} [${err.code}]`, ours: false };
  if (isGatewayError(err))
    return {
      code: err.code,
      reason: `${err.failureReason} [${err.code}]`,
      ours: err.code === 'GATEWAY_ERR_INTERNAL',
    };
  if (isPolicyError(err))
    return {
      code: err.code,
      reason: `${err.failureReason} [${err.code}]`,
      ours: err.ours,
      quiet: true,
    };
  if (isStoreError(err))
    return {
      code: err.code,
      reason: `${err.failureReason} [${err.code}]`,
      ours: err.code !== 'STORE_ERR_BAD_INPUT',
    };
  return INTERNAL_REFUSAL;
}

export const INTERNAL_REFUSAL: Refusal = {
  code: 'GATEWAY_ERR_INTERNAL',
  reason: 'internal tracker error, retry later [GATEWAY_ERR_INTERNAL]',
  ours: true,
};
