/**
 * Gossip timing profiles by network, as memberlist names them:
 * `local` (DefaultLocalConfig: loopback, one machine), `lan`
 * (DefaultLANConfig) and `wan` (DefaultWANConfig). The default follows the
 * bind address: `local` on loopback, `lan` otherwise, so an agent on a real
 * network never runs with loopback timeouts (a 100 ms probe timeout marks
 * healthy remote members failed).
 */
import { DEFAULT_LAN_PROFILE, LOCAL_PROFILE, resolveProfile, type GossipProfile } from '@rhizome/gossip';
import { isLoopback } from './address';

export const PROFILE_NAMES = ['local', 'lan', 'wan'] as const;
export type ProfileName = (typeof PROFILE_NAMES)[number];

/** memberlist's DefaultWANConfig, over the LAN profile. */
const WAN_OVERRIDES: Partial<GossipProfile> = Object.freeze({
  joinTimeout: 30_000, // memberlist WAN TCPTimeout: 30 s
  suspicionMult: 6, // memberlist WAN: 6 (more room for slow links)
  pushPullInterval: 60_000, // memberlist WAN: 60 s
  probeTimeout: 3_000, // memberlist WAN: 3 s
  probeInterval: 5_000, // memberlist WAN: 5 s
  gossipNodes: 4, // memberlist WAN: 4
  gossipInterval: 500, // memberlist WAN: 500 ms
  gossipToTheDeadTime: 60_000, // memberlist WAN: 60 s
  reliableRetransmitInterval: 3_000, // one probe timeout, as on the LAN
  evidenceSuspicionTimeout: 3_000, // one probe timeout
});

export function gossipProfile(name: ProfileName): GossipProfile {
  switch (name) {
    case 'local':
      return LOCAL_PROFILE;
    case 'lan':
      return DEFAULT_LAN_PROFILE;
    case 'wan':
      return resolveProfile(DEFAULT_LAN_PROFILE, WAN_OVERRIDES);
  }
}

/** `local` on a loopback bind, `lan` otherwise (a wildcard bind is on the network). */
export function defaultProfileFor(bindHost: string): ProfileName {
  return isLoopback(bindHost) ? 'local' : 'lan';
}
