// SPIFFE IDs of mesh workloads: spiffe://<trust domain>/ns/<namespace>/sa/<service>, formatted, parsed,
// and read from a peer certificate's subjectAltName string (as node:tls reports it). An X.509 SVID
// carries exactly one URI SAN; a certificate with none or several has no identity here.

export interface SpiffeParts {
  readonly trustDomain: string;
  readonly namespace: string;
  readonly service: string;
}

/** Trust domain names: lowercase letters, digits, dots, dashes and underscores (SPIFFE ID spec §2.1). */
const TRUST_DOMAIN = /^[a-z0-9._-]{1,255}$/;
/** Path segments: letters, digits, dots, dashes and underscores; never empty, "." or ".." (§2.2). */
const SEGMENT = /^[A-Za-z0-9._-]+$/;
/** A SPIFFE ID is at most 2048 bytes. */
const MAX_LENGTH = 2048;

export function isTrustDomain(value: string): boolean {
  return TRUST_DOMAIN.test(value);
}

export function isPathSegment(value: string): boolean {
  return SEGMENT.test(value) && value !== '.' && value !== '..';
}

export function spiffeId(trustDomain: string, namespace: string, service: string): string {
  if (!isTrustDomain(trustDomain)) throw new Error(`invalid SPIFFE trust domain "${trustDomain}" (lowercase letters, digits, ".", "-", "_")`);
  if (!isPathSegment(namespace)) throw new Error(`invalid namespace "${namespace}" for a SPIFFE ID (letters, digits, ".", "-", "_")`);
  if (!isPathSegment(service)) throw new Error(`invalid service name "${service}" for a SPIFFE ID (letters, digits, ".", "-", "_")`);
  const id = `spiffe://${trustDomain}/ns/${namespace}/sa/${service}`;
  if (id.length > MAX_LENGTH) throw new Error(`SPIFFE ID longer than ${MAX_LENGTH} bytes`);
  return id;
}

/** The parts of a mesh workload's SPIFFE ID, or undefined if `uri` is not one. */
export function parseSpiffeId(uri: string): SpiffeParts | undefined {
  if (!isSpiffeId(uri)) return undefined;
  const [trustDomain, ns, namespace, sa, service, ...rest] = uri.slice('spiffe://'.length).split('/');
  if (ns !== 'ns' || sa !== 'sa' || rest.length !== 0 || namespace === undefined || service === undefined) return undefined;
  return { trustDomain: trustDomain!, namespace, service };
}

/** Whether `uri` is a well-formed SPIFFE ID with a workload path (any path, not only /ns/…/sa/…). */
export function isSpiffeId(uri: string): boolean {
  if (uri.length > MAX_LENGTH || !uri.startsWith('spiffe://')) return false;
  const [trustDomain, ...path] = uri.slice('spiffe://'.length).split('/');
  return isTrustDomain(trustDomain!) && path.length > 0 && path.every(isPathSegment);
}

/**
 * The SPIFFE ID in a peer certificate's URI SANs (node:tls PeerCertificate/X509Certificate
 * `subjectaltname` string like 'URI:spiffe://...'), if exactly one. A certificate with several URI
 * SANs, or whose only URI SAN is not a SPIFFE ID, has none.
 */
export function spiffeIdOf(subjectAltName: string | undefined): string | undefined {
  if (!subjectAltName) return undefined;
  const entries = parseSubjectAltName(subjectAltName);
  if (!entries) return undefined;
  const uris = entries.filter((e) => e.type === 'URI');
  if (uris.length !== 1) return undefined;
  const uri = uris[0]!.value;
  return isSpiffeId(uri) ? uri : undefined;
}

/**
 * Splits Node's subjectAltName rendering ("DNS:a, URI:b, IP Address:1.2.3.4") into entries. Node
 * quotes a value holding a separator or other special character as a JSON string (so that a crafted
 * name cannot pose as two entries); such values are unquoted here. Undefined if it cannot be parsed.
 */
function parseSubjectAltName(text: string): { type: string; value: string }[] | undefined {
  const entries: { type: string; value: string }[] = [];
  let at = 0;
  while (at < text.length) {
    const colon = text.indexOf(':', at);
    if (colon === -1) return undefined;
    const type = text.slice(at, colon);
    let value: string;
    let end: number;
    if (text[colon + 1] === '"') {
      end = closingQuote(text, colon + 1);
      if (end === -1) return undefined;
      end += 1;
      try {
        const parsed: unknown = JSON.parse(text.slice(colon + 1, end));
        if (typeof parsed !== 'string') return undefined;
        value = parsed;
      } catch {
        return undefined;
      }
      if (end !== text.length && !text.startsWith(', ', end)) return undefined;
    } else {
      end = text.indexOf(', ', colon + 1);
      if (end === -1) end = text.length;
      value = text.slice(colon + 1, end);
    }
    entries.push({ type, value });
    at = end === text.length ? end : end + 2;
  }
  return entries;
}

/** Index of the quote closing the JSON string that opens at `open`, or -1. */
function closingQuote(text: string, open: number): number {
  for (let i = open + 1; i < text.length; i++) {
    if (text[i] === '\\') i++;
    else if (text[i] === '"') return i;
  }
  return -1;
}
