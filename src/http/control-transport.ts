// How every faultline client reaches a control plane: one undici dispatcher per trusted CA (the
// operator's --control-ca; without one, Node's default trust), and a failure to speak TLS with it
// explained — the URL, what went wrong, and the flag that fixes it — instead of OpenSSL's words alone.
import { X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { Agent, request, type Dispatcher, type RequestOptions as UndiciRequestOptions, type ResponseData } from './undici.ts';
import { ErrorCode, FaultlineError } from '../errors.ts';

/** What a control plane answers a plain-HTTP request on its TLS port with (its header says so). */
export const TLS_REQUIRED_HEADER = 'x-faultline-tls';

/** Where `faultline control --tls auto` writes its CA, under its state directory. */
export const CONTROL_CA_FILE = 'control-ca.pem';

type RequestOptions = Omit<UndiciRequestOptions, 'dispatcher'>;
export type ControlResponse = ResponseData;

/** A control plane that cannot be spoken to over this URL as it is: its certificate, or the scheme. */
export class ControlTlsError extends FaultlineError {
  constructor(message: string, options?: ErrorOptions) {
    super(ErrorCode.ControlTls, message, options);
  }
}

/** One agent per CA bundle, shared by every client in the process (their connections pooled). */
const agents = new Map<string, Agent>();

/** The dispatcher for a control plane trusted through `ca` (PEM); undici's global one without it. */
export function controlDispatcher(ca: string | undefined): Dispatcher | undefined {
  if (ca === undefined) return undefined;
  let agent = agents.get(ca);
  if (!agent) {
    agent = new Agent({ connect: { ca } });
    agents.set(ca, agent);
  }
  return agent;
}

/** A request to a control plane: through the dispatcher for `ca`, its TLS failures explained. */
export async function controlRequest(url: string, options: RequestOptions, ca?: string): Promise<ControlResponse> {
  const dispatcher = controlDispatcher(ca);
  let response: ControlResponse;
  try {
    response = await request(url, { ...options, ...(dispatcher && { dispatcher }) });
  } catch (error) {
    throw explained(url, error, ca !== undefined);
  }
  if (response.headers[TLS_REQUIRED_HEADER] === 'required') {
    await response.body.dump();
    throw new ControlTlsError(`${origin(url)} serves HTTPS, not plain HTTP: use ${origin(url).replace(/^http:/, 'https:')} (and --control-ca with its CA)`);
  }
  return response;
}

/** Certificate checks that failed: the peer's certificate is not one this client trusts for that name. */
const UNTRUSTED = new Set([
  'DEPTH_ZERO_SELF_SIGNED_CERT', 'SELF_SIGNED_CERT_IN_CHAIN', 'UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY', 'CERT_UNTRUSTED', 'CERT_SIGNATURE_FAILURE', 'CERT_HAS_EXPIRED', 'CERT_NOT_YET_VALID', 'ERR_TLS_CERT_ALTNAME_INVALID',
]);
/** What a TLS client sees when the other side answers in plain text. */
const NOT_TLS = new Set(['ERR_SSL_WRONG_VERSION_NUMBER', 'ERR_SSL_PACKET_LENGTH_TOO_LONG', 'ERR_SSL_RECORD_LAYER_FAILURE']);

function explained(url: string, error: unknown, withCa: boolean): unknown {
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code !== 'string') return error;
  const reason = (error as Error).message.split('; if the root CA')[0];
  if (UNTRUSTED.has(code)) {
    const fix = code === 'ERR_TLS_CERT_ALTNAME_INVALID'
      ? 'use a name or address its certificate is for (faultline control --tls-san NAME adds one)'
      : withCa
        ? 'the --control-ca given is not the CA that signed it (faultline control --tls auto writes its own to <state-dir>/control-ca.pem)'
        : 'give its CA with --control-ca FILE or FAULTLINE_CONTROL_CA (faultline control --tls auto writes it to <state-dir>/control-ca.pem)';
    return new ControlTlsError(`${origin(url)}: the control plane's certificate does not verify (${code}: ${reason}): ${fix}`, { cause: error });
  }
  if (NOT_TLS.has(code) && url.startsWith('https:')) {
    return new ControlTlsError(`${origin(url)} does not speak TLS (${code}): if the control plane serves plain HTTP, use ${origin(url).replace(/^https:/, 'http:')}`, { cause: error });
  }
  return error;
}

function origin(url: string): string {
  try {
    return new URL(url).origin;
  } catch {
    return url;
  }
}

/**
 * The CA bundle (PEM) to trust control planes through: the file given, else the one FAULTLINE_CONTROL_CA
 * names, else none (Node's default trust). Throws naming the file when it holds no certificate.
 */
export async function readControlCa(file: string | undefined = process.env.FAULTLINE_CONTROL_CA || undefined, what = '--control-ca'): Promise<string | undefined> {
  if (file === undefined) return undefined;
  let pem: string;
  try {
    pem = await readFile(file, 'utf8');
  } catch (error) {
    throw new FaultlineError(ErrorCode.ConfigUnreadable, `${what} ${file}: cannot read it (${(error as Error).message})`, { cause: error });
  }
  const blocks = pem.match(/-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/g) ?? [];
  if (blocks.length === 0) throw new FaultlineError(ErrorCode.ConfigInvalid, `${what} ${file}: no PEM certificate in it`);
  for (const [i, block] of blocks.entries()) {
    try {
      new X509Certificate(block);
    } catch (error) {
      throw new FaultlineError(ErrorCode.ConfigInvalid, `${what} ${file}: certificate ${i + 1} does not parse (${(error as Error).message})`, { cause: error });
    }
  }
  return pem;
}
