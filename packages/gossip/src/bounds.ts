/**
 * Bounds on the wire integers that only ever grow: incarnation numbers and
 * Lamport times (user events, queries, and the clocks push-pull carries).
 *
 * A receiver adopts the largest value it sees, so without a bound a single
 * frame (from a member, or from anyone on an unencrypted mesh) can push a
 * member's incarnation or a clock to 2^53 - 1: the member can no longer
 * refute (its refutation must be one higher, which no longer encodes as a
 * safe integer and is refused by every parser), and every later event,
 * query and push-pull carrying the clock is dropped as malformed:
 * anti-entropy dies cluster-wide.
 *
 * The rule: a value may move ahead of what the receiver knows only by a
 * plausible amount, and never past an absolute ceiling far below 2^53, so
 * whatever is adopted stays encodable, and one more (a refutation, the next
 * event) does too. A value beyond the bound is refused (counted as
 * `implausible`, reported in the refused-frames summary), never clamped: a
 * clamped value would still be a lie about what the sender said.
 *
 * - Incarnations: a member bumps its own only to refute, change tags or
 *   rejoin, one at a time; a jump of more than MAX_INCARNATION_JUMP over what
 *   we know is implausible. A member we do not know yet may arrive with any
 *   incarnation up to MAX_NEW_INCARNATION (memberlist's uint32), as after a
 *   reap. Our own refutation is at most one above an accepted accusation.
 * - Lamport times: each event or query adds one; a jump of more than
 *   MAX_LAMPORT_JUMP over our clock is implausible (4 billion events
 *   between two of a member's syncs). The answer to our own join may carry
 *   any clock below MAX_LAMPORT, so a fresh node can join a cluster that
 *   has been counting for years.
 */

/** Largest jump of a known member's incarnation over the one we hold. */
export const MAX_INCARNATION_JUMP = 2 ** 16;
/** Largest incarnation accepted for a member we do not know (memberlist's uint32 range). */
export const MAX_NEW_INCARNATION = 2 ** 32 - 1;
/** Largest jump of a Lamport time over our clock. */
export const MAX_LAMPORT_JUMP = 2 ** 32;
/** No Lamport time above this is ever adopted (2^48: millennia at a million events a second, far below 2^53). */
export const MAX_LAMPORT = 2 ** 48;

/** Whether incarnation `inc` about a member we hold at `known` (undefined: unknown) may be believed. */
export function plausibleIncarnation(inc: number, known: number | undefined): boolean {
  if (known === undefined) return inc <= MAX_NEW_INCARNATION;
  return inc <= known + MAX_INCARNATION_JUMP;
}

/**
 * Whether Lamport time `lt` may be adopted by a clock at `current`.
 * `joinAnswer`: it comes with the answer to our own join (any time below
 * MAX_LAMPORT).
 */
export function plausibleLamport(lt: number, current: number, joinAnswer = false): boolean {
  if (lt > MAX_LAMPORT) return false;
  return joinAnswer || lt <= current + MAX_LAMPORT_JUMP;
}
