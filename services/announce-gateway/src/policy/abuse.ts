// Bans the gateway applies by itself (docs/policy.md "Abuse control"): a
// source that sends ABUSE_BAN_STRIKES bad UDP connection ids or malformed
// packets within ABUSE_BAN_WINDOW_SECONDS is banned for ABUSE_BAN_SECONDS.
// The ban takes effect here at once and is written to the policy data, so
// every replica enforces it from its next refresh and operators see it (and
// may lift it) through the admin API. Bans an operator made arrive the same way.
import type { Logger } from 'pino';
import { banKeyOf, type BanReason, type CompiledPolicy } from '@shoal/policy';
import type { PeerAddress } from '../client-address.ts';
import type { GatewayMetrics } from '../metrics.ts';

export type StrikeReason = Exclude<BanReason, 'manual'>;

export interface AbuseControlOptions {
  /** Strikes within the window that ban; 0: the gateway bans nobody by itself (it still enforces bans). */
  strikes: number;
  windowSeconds: number;
  banSeconds: number;
  /** Sources whose strikes are counted; beyond it, the oldest are forgotten. */
  maxAddresses: number;
  /** Writes a ban to the policy data (storage-api POST /v1/bans, or the store's KV). */
  ban: ((key: string, until: number, reason: StrikeReason) => Promise<boolean>) | undefined;
  current: () => CompiledPolicy | undefined;
  metrics: GatewayMetrics;
  logger: Logger;
}

export interface AbuseControl {
  /** true when the source is banned now (by this gateway, or in the snapshot). */
  banned(source: PeerAddress, nowMs: number): boolean;
  /** One bad packet from `source`. */
  strike(source: PeerAddress, reason: StrikeReason, nowMs: number): void;
}

interface Strikes {
  count: number;
  sinceMs: number;
}

export function createAbuseControl(options: AbuseControlOptions): AbuseControl {
  const { metrics, logger } = options;
  const windowMs = options.windowSeconds * 1000;
  const strikes = new Map<string, Strikes>();
  /** Bans this gateway made, until the snapshot carries them: key -> until ms. */
  const local = new Map<string, number>();

  function ban(key: string, reason: StrikeReason, nowMs: number): void {
    const until = nowMs + options.banSeconds * 1000;
    local.set(key, until);
    metrics.banApplied(reason);
    logger.warn({ key, reason, until: new Date(until).toISOString() }, 'source banned');
    options.ban?.(key, until, reason).catch((err: unknown) => {
      logger.warn({ err, key }, 'could not store a ban; it holds on this gateway only');
    });
  }

  return {
    banned(source, nowMs) {
      const policy = options.current();
      if (local.size === 0 && policy?.hasBans !== true) return false;
      const key = banKeyOf(source.family, source.bytes);
      const mine = local.get(key);
      if (mine !== undefined) {
        if (mine > nowMs) {
          // A ban lifted by an operator disappears from the snapshot: drop ours
          // once the snapshot has had time to carry it (it is there, or was removed).
          if (policy?.bannedUntil(key, nowMs) !== undefined) local.delete(key);
          return true;
        }
        local.delete(key);
      }
      return policy?.bannedUntil(key, nowMs) !== undefined;
    },
    strike(source, reason, nowMs) {
      if (options.strikes === 0) return;
      const key = banKeyOf(source.family, source.bytes);
      let s = strikes.get(key);
      if (s === undefined || nowMs - s.sinceMs > windowMs) {
        if (s === undefined && strikes.size >= options.maxAddresses) {
          const oldest = strikes.keys().next();
          if (oldest.done !== true) strikes.delete(oldest.value);
        }
        s = { count: 0, sinceMs: nowMs };
        strikes.set(key, s);
      }
      if (++s.count >= options.strikes) {
        strikes.delete(key);
        ban(key, reason, nowMs);
      }
    },
  };
}
