// `compression`: the forwarded response goes to the client gzip- or brotli-encoded, in the
// encoding the client prefers among those configured (Accept-Encoding, q-values), for the
// configured content types above a size. The layer only chooses: the response writer
// compresses (gateway/routing/response-compression.ts), so it costs nothing per request
// beyond setting one field, and a later compression layer (a service prefix's) wins.

import {
  def,
  integer,
  list,
  object,
  oneOf,
  refine,
  string,
  transform,
} from "../../config/schema.js";
import { definePlugin } from "../../plugins/registry.js";
import {
  CompressionStats,
  contentTypeProblem,
  DEFAULT_BROTLI_QUALITY,
  DEFAULT_CONTENT_TYPES,
  DEFAULT_GZIP_LEVEL,
  ENCODINGS,
  MIN_COMPRESSED_BYTES,
  ResponseCompression,
} from "../../routing/response-compression.js";
import type { ArrivingRequest, ServerLayer } from "../../routing/server-stack/layer.js";

const contentType = transform(
  refine(string("a content type"), (v) => contentTypeProblem(v)),
  (v) => v.trim().toLowerCase(),
);

const schema = object({
  /** The encodings offered, most preferred first (used on a tie of the client's q-values). */
  encodings: def(list(oneOf(ENCODINGS), { minItems: 1 }), [...ENCODINGS]),
  /** Content types compressed: `text/html`, `text/*`, `application/*+json`, `*\/*`. */
  contentTypes: def(list(contentType, { minItems: 1 }), [...DEFAULT_CONTENT_TYPES]),
  /** A body whose Content-Length is smaller is sent as it is. */
  minBytes: def(integer({ min: 0 }), MIN_COMPRESSED_BYTES),
  gzipLevel: def(integer({ min: 1, max: 9 }), DEFAULT_GZIP_LEVEL),
  brotliQuality: def(integer({ min: 0, max: 11 }), DEFAULT_BROTLI_QUALITY),
});

export class CompressionLayer implements ServerLayer {
  readonly name = "compression";

  constructor(readonly compression: ResponseCompression) {}

  arrive(req: ArrivingRequest): boolean {
    req.compression = this.compression;
    return false;
  }
}

export const compressionLayer = definePlugin({
  category: "serverLayer",
  kind: "compression",
  schema,
  validate(config) {
    const seen = new Set<string>();
    const problems = [];
    for (const e of config.encodings) {
      if (seen.has(e))
        problems.push({ field: "encodings", message: `${e} is listed more than once` });
      seen.add(e);
    }
    return problems;
  },
  create: (config, ctx) =>
    new CompressionLayer(
      new ResponseCompression({
        ...config,
        stats: new CompressionStats(ctx.metrics, ctx.routerLabel),
      }),
    ),
});
