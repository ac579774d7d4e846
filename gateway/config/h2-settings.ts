// Linkerd 1's HTTP/2 parameters, on an h2 router's servers and clients: the SETTINGS
// lintel announces on each HTTP/2 connection (RFC 9113 §6.5.2), with the same names and
// bounds. `windowUpdateRatio` is read and checked for Linkerd configs, but nghttp2 (under
// node:http2) chooses when to send WINDOW_UPDATE itself: it has no effect.

import type { Settings } from "node:http2";
import { integer, number, opt } from "./schema.js";

/** The largest flow-control window (2^31 - 1) and frame payload (2^24 - 1) HTTP/2 allows. */
const MAX_WINDOW = 2 ** 31 - 1;
const MIN_FRAME = 16_384;
const MAX_FRAME = 2 ** 24 - 1;

/** The fields both servers and clients take. */
export const h2SettingsFields = {
  /** SETTINGS_HEADER_TABLE_SIZE: the HPACK dynamic table this side keeps for the peer. */
  headerTableBytes: opt(integer({ min: 0, max: 2 ** 32 - 1 })),
  /** SETTINGS_INITIAL_WINDOW_SIZE: how much the peer may send on a stream before a window update. */
  initialStreamWindowBytes: opt(integer({ min: 0, max: MAX_WINDOW })),
  /** SETTINGS_MAX_FRAME_SIZE: the largest frame payload the peer may send. */
  maxFrameBytes: opt(integer({ min: MIN_FRAME, max: MAX_FRAME })),
  /** SETTINGS_MAX_HEADER_LIST_SIZE: the largest header list the peer may send. */
  maxHeaderListBytes: opt(integer({ min: 1 })),
  /** Linkerd's window update threshold; no effect here (see above). */
  windowUpdateRatio: opt(
    number({
      min: Number.MIN_VALUE,
      max: 1 - Number.EPSILON,
      expected: "a number between 0 and 1, exclusive",
    }),
  ),
};

/** The server-only field. */
export const h2ServerSettingsFields = {
  ...h2SettingsFields,
  /** SETTINGS_MAX_CONCURRENT_STREAMS: streams a client may have open on one connection. */
  maxConcurrentStreamsPerConnection: opt(integer({ min: 1, max: 2 ** 31 - 1 })),
};

export interface H2SettingsConfig {
  readonly headerTableBytes?: number | undefined;
  readonly initialStreamWindowBytes?: number | undefined;
  readonly maxFrameBytes?: number | undefined;
  readonly maxHeaderListBytes?: number | undefined;
  readonly maxConcurrentStreamsPerConnection?: number | undefined;
}

/** The node:http2 settings a config names (only those it names). */
export function http2Settings(c: H2SettingsConfig): Settings {
  const s: Settings = {};
  if (c.headerTableBytes !== undefined) s.headerTableSize = c.headerTableBytes;
  if (c.initialStreamWindowBytes !== undefined) s.initialWindowSize = c.initialStreamWindowBytes;
  if (c.maxFrameBytes !== undefined) s.maxFrameSize = c.maxFrameBytes;
  if (c.maxHeaderListBytes !== undefined) s.maxHeaderListSize = c.maxHeaderListBytes;
  if (c.maxConcurrentStreamsPerConnection !== undefined)
    s.maxConcurrentStreams = c.maxConcurrentStreamsPerConnection;
  return s;
}

/** Whether a config names any HTTP/2 setting (windowUpdateRatio included). */
export function namesH2Settings(c: H2SettingsConfig & { windowUpdateRatio?: number }): boolean {
  return c.windowUpdateRatio !== undefined || Object.keys(http2Settings(c)).length > 0;
}
