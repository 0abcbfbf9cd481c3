// `faultline token create|revoke`: the operator's side of join tokens, over the control plane's API
// with the admin token (tokens-api.ts).
import { readFile } from 'node:fs/promises';
import type { Revocation } from './revocations.ts';
import { controlRequest } from '../http/control-transport.ts';

export interface MadeToken {
  readonly token: string;
  readonly id: string;
  readonly service: string;
  readonly issuedAt: string;
  readonly expiresAt: string;
}

/** The control plane as the operator's commands reach it: its URL, the admin token, the CA it is trusted through. */
export interface ControlAt {
  readonly url: string;
  readonly token: string;
  readonly ca?: string | undefined;
}

export async function createToken(control: ControlAt, service: string, ttl?: string): Promise<MadeToken> {
  return call<MadeToken>(control, '/tokens', { service, ...(ttl !== undefined && { ttl }) });
}

/** Revokes a join token given whole, by its id, or as the path of a file that holds it. */
export async function revokeToken(control: ControlAt, tokenOrId: string): Promise<Revocation> {
  const given = await tokenIn(tokenOrId);
  const body = /^[0-9a-f]{32}$/.test(given) ? { id: given } : { token: given };
  return (await call<{ revoked: Revocation }>(control, '/tokens/revoked', body)).revoked;
}

/** The argument itself, unless it is neither an id nor a token and names a readable file. */
async function tokenIn(argument: string): Promise<string> {
  if (/^[0-9a-f]{32}$/.test(argument) || /^[\w-]+\.[\w-]+\.[\w-]+$/.test(argument)) return argument;
  return (await readFile(argument, 'utf8').catch(() => argument)).trim();
}

async function call<T>(control: ControlAt, path: string, body: object): Promise<T> {
  const response = await controlRequest(`${control.url.replace(/\/$/, '')}${path}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${control.token}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(10_000),
  }, control.ca);
  const text = await response.body.text();
  let answer: { error?: string } & Record<string, unknown>;
  try {
    answer = JSON.parse(text) as typeof answer;
  } catch {
    throw new Error(`the control plane answered ${response.statusCode} with no JSON: ${text.slice(0, 200)}`);
  }
  if (response.statusCode >= 300) throw new Error(`the control plane refused (${response.statusCode}): ${answer.error ?? text.slice(0, 200)}`);
  return answer as T;
}
