// The page's calls: the control plane's own API, with the session cookie (sent by the browser) and,
// for every change, the session's CSRF token.
export interface SessionInfo {
  readonly role: 'admin' | 'viewer';
  readonly csrf: string | null;
  readonly expiresAt: string | null;
  readonly csrfHeader: string;
}

export class ApiError extends Error {
  readonly status: number;
  readonly body: { error?: string; problems?: { field: string; message: string }[] };
  constructor(status: number, body: ApiError['body']) {
    super(body.error ?? `HTTP ${status}`);
    this.status = status;
    this.body = body;
  }
}

let session: SessionInfo | undefined;

/** Sent on window when the API answers 401: the session ended (signed out elsewhere, expired, restarted). */
export const SESSION_ENDED = 'faultline:session-ended';

export function useSession(info: SessionInfo | undefined): void {
  session = info;
}

export async function call<T = unknown>(method: string, path: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = {};
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (method !== 'GET' && session?.csrf) headers[session.csrfHeader] = session.csrf;
  const response = await fetch(path, { method, headers, credentials: 'same-origin', ...(body !== undefined && { body: JSON.stringify(body) }) });
  if (response.status === 204) return undefined as T;
  const text = await response.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // not JSON: kept as text
  }
  if (response.status === 401 && session) dispatchEvent(new Event(SESSION_ENDED));
  if (!response.ok) throw new ApiError(response.status, typeof parsed === 'object' && parsed !== null ? parsed : { error: text });
  return parsed as T;
}
