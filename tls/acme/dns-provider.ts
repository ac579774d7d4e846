// How a DNS-01 challenge's TXT record gets published: a DNS provider kind (an `exec` of a
// user command, as lego's exec provider does; plugins for DNS APIs) presents the record
// and cleans it up afterwards.

export interface DnsProvider {
  readonly description: string;
  /** Publishes TXT `value` at `fqdn` (`_acme-challenge.example.com.`); resolves once done. */
  present(fqdn: string, value: string): Promise<void>;
  /** Removes that record (best effort; a failure is logged, not fatal). */
  cleanup(fqdn: string, value: string): Promise<void>;
  /** How long to wait after present() before asking the CA to validate (propagation). */
  readonly propagationDelayMs: number;
}
