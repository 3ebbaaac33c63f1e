export { systemClock, backgroundTimers, KEEP_ALIVE, BACKGROUND } from './clock';
export type { Clock, TimerHandle, TimerOptions } from './clock';
export { VirtualClock } from './virtual-clock';
export type { ScheduledTimer } from './virtual-clock';
export { seededRandom } from './random';
export type { Random } from './random';
