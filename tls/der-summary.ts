// What choosing a certificate needs, read straight from its DER: the names it serves, its
// validity and its issuer. Node's X509Certificate takes about a millisecond per
// certificate here (OpenSSL 3 decoders), which is most of a 10,000-certificate startup;
// walking the few fields needed takes a few microseconds. Anything unexpected returns
// undefined and the caller uses X509Certificate instead.

export interface CertificateSummary {
  /** DNS subjectAltNames, else the CN; lower-case, deduplicated (as certificateNames). */
  readonly names: string[];
  readonly notBefore: Date;
  readonly notAfter: Date;
  /** The issuer's name, one `KEY=value` per line (as X509Certificate.issuer shows it). */
  readonly issuer: string;
  /** Upper-case hex without leading zeros (as X509Certificate.serialNumber). */
  readonly serialNumber: string;
}

interface Tlv {
  readonly tag: number;
  /** Where the value starts and ends in the buffer. */
  readonly start: number;
  readonly end: number;
}

function readTlv(b: Buffer, at: number, limit: number): Tlv {
  if (at + 2 > limit) throw new RangeError("truncated");
  const tag = b[at]!;
  let len = b[at + 1]!;
  let start = at + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0 || n > 4 || start + n > limit) throw new RangeError("bad length");
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + b[start + i]!;
    start += n;
  }
  const end = start + len;
  if (end > limit) throw new RangeError("truncated");
  return { tag, start, end };
}

/** The elements of a constructed value. */
function children(b: Buffer, t: Tlv): Tlv[] {
  const out: Tlv[] = [];
  for (let at = t.start; at < t.end; ) {
    const c = readTlv(b, at, t.end);
    out.push(c);
    at = c.end;
  }
  return out;
}

const oidHex = (b: Buffer, t: Tlv) => b.toString("hex", t.start, t.end);

/** Attribute type OIDs (hex of the DER value) and the short names OpenSSL prints. */
const ATTRIBUTE_NAMES = new Map([
  ["550403", "CN"],
  ["550406", "C"],
  ["550407", "L"],
  ["550408", "ST"],
  ["55040a", "O"],
  ["55040b", "OU"],
  ["550405", "serialNumber"],
  ["2a864886f70d010901", "emailAddress"],
  ["0992268993f22c640119", "DC"],
]);
/** UTF8String, PrintableString, IA5String: what this reader decodes (others: X509Certificate). */
const TEXT_TAGS = new Set([0x0c, 0x13, 0x16]);
const CN = "550403";
const SUBJECT_ALT_NAME = "551d11";
const DNS_NAME = 0x82;
const UTC_TIME = 0x17;
const GENERALIZED_TIME = 0x18;

/** A Name's attributes in order, as [type OID hex, value]. */
function nameAttributes(b: Buffer, name: Tlv): [string, string][] {
  const out: [string, string][] = [];
  for (const rdn of children(b, name)) {
    for (const atv of children(b, rdn)) {
      const [type, value] = children(b, atv);
      if (!type || !value || !TEXT_TAGS.has(value.tag)) throw new RangeError("bad attribute");
      out.push([oidHex(b, type), b.toString("utf8", value.start, value.end)]);
    }
  }
  return out;
}

function time(b: Buffer, t: Tlv): Date {
  const s = b.toString("latin1", t.start, t.end);
  const m =
    t.tag === UTC_TIME
      ? /^(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(s)
      : t.tag === GENERALIZED_TIME
        ? /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(s)
        : null;
  if (!m) throw new RangeError("bad time");
  let year = Number(m[1]);
  if (t.tag === UTC_TIME) year += year < 50 ? 2000 : 1900; // RFC 5280 §4.1.2.5.1
  return new Date(
    Date.UTC(year, Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6])),
  );
}

function dnsNames(b: Buffer, extensions: Tlv): string[] {
  for (const ext of children(b, extensions)) {
    const parts = children(b, ext);
    if (parts[0] === undefined || oidHex(b, parts[0]) !== SUBJECT_ALT_NAME) continue;
    const octets = parts[parts.length - 1]!;
    const general = readTlv(b, octets.start, octets.end);
    return children(b, general)
      .filter((g) => g.tag === DNS_NAME)
      .map((g) => b.toString("latin1", g.start, g.end));
  }
  return [];
}

/** The summary of a DER certificate, or undefined when it is not shaped as expected. */
export function summarizeCertificate(der: Buffer): CertificateSummary | undefined {
  try {
    const cert = readTlv(der, 0, der.length);
    const tbs = children(der, cert)[0];
    if (!tbs) return undefined;
    const fields = children(der, tbs);
    // version [0] is optional; then serial, signature, issuer, validity, subject, key.
    let i = fields[0]?.tag === 0xa0 ? 1 : 0;
    const serial = fields[i];
    i += 2;
    const issuer = fields[i++];
    const validity = fields[i++];
    const subject = fields[i++];
    i++;
    if (!serial || !issuer || !validity || !subject) return undefined;
    const [from, to] = children(der, validity);
    if (!from || !to) return undefined;
    const extensions = fields.slice(i).find((f) => f.tag === 0xa3);
    const names = new Set<string>();
    if (extensions) {
      const list = readTlv(der, extensions.start, extensions.end);
      for (const n of dnsNames(der, list)) names.add(n.trim().toLowerCase());
    }
    if (names.size === 0) {
      const cn = nameAttributes(der, subject)
        .find(([type]) => type === CN)?.[1]
        .trim();
      if (cn) names.add(cn.toLowerCase());
    }
    return {
      names: [...names],
      notBefore: time(der, from),
      notAfter: time(der, to),
      serialNumber: serialHex(der, serial),
      issuer: nameAttributes(der, issuer)
        .map(([type, value]) => {
          const key = ATTRIBUTE_NAMES.get(type);
          if (key === undefined) throw new RangeError("attribute OpenSSL names otherwise");
          return `${key}=${value}`;
        })
        .join("\n"),
    };
  } catch {
    return undefined;
  }
}

function serialHex(b: Buffer, t: Tlv): string {
  let start = t.start;
  while (start < t.end - 1 && b[start] === 0) start++;
  return b.toString("hex", start, t.end).toUpperCase();
}

const PEM_FIRST_CERT = /-----BEGIN CERTIFICATE-----([\s\S]+?)-----END CERTIFICATE-----/;

/** The DER of the first certificate in a PEM text, or undefined when there is none. */
export function firstCertificateDer(pem: string): Buffer | undefined {
  const m = PEM_FIRST_CERT.exec(pem);
  return m ? Buffer.from(m[1]!, "base64") : undefined;
}
