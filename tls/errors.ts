// Certificate problems, each naming the file it is about and what to do.

export class CertificateError extends Error {
  constructor(
    readonly file: string,
    readonly reason: string,
  ) {
    super(`${file}: ${reason}`);
    this.name = "CertificateError";
  }
}

/** Where tls/ reports what it does; the caller decides how to log (tls/ never imports gateway/). */
export type TlsLog = (
  level: "info" | "warn" | "error",
  message: string,
  fields?: Record<string, string | number>,
) => void;
