/** The pure domain: no I/O, no clock, no randomness. Other layers import from here. */
export * from './assert.ts';
export * from './errors.ts';
export * from './event.ts';
export * as limits from './limits.ts';
export * from './member/index.ts';
export * from './points.ts';
export * from './programme.ts';
export * from './tenant/index.ts';
export * from './time.ts';
