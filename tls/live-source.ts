// Certificates that arrive as text from a live source (Kubernetes Secrets; later ACME),
// as the certificate store consumes them. tls/ defines the shape; the source that feeds
// it lives where its client does (gateway/k8s), since tls/ never imports gateway/.

/** A certificate (chain) and its key, as PEM text. */
export interface PemPair {
  readonly certPem: string;
  readonly keyPem: string;
}

export interface LivePemSource {
  /** What it is, for messages: `Secret default/web-tls`, `Secrets named by Ingress spec.tls`. */
  readonly description: string;
  /**
   * The pairs now, by origin (`Secret default/web-tls`): a pair, or why that origin has
   * none (missing, wrong type) in words.
   */
  current(): ReadonlyMap<string, PemPair | string>;
  /** Calls `listener` when `current()` may have changed; returns the function that stops. */
  onChange(listener: () => void): () => void;
  /** A problem at startup stops lintel (a Secret named in the config); otherwise it is logged. */
  readonly required: boolean;
  /** Releases what the source holds (its watches); the store calls it when it stops. */
  close?(): void;
}
