// The parts of undici a sidecar uses, each loaded from its own file. undici has no `exports` map,
// and its index loads everything it offers (fetch, WebSocket, the cache stores, the mock agents):
// imported after a sidecar's other packages and Node's own modules, the index adds ~4.3 MiB of RSS
// and these parts ~1.0; an idle sidecar holds 3.5 MiB less (bench/memory.ts; docs/benchmarks.md,
// "Memory"). The types are undici's own.
import { createRequire } from 'node:module';
import type * as Undici from 'undici';

const require = createRequire(import.meta.url);

export const Agent: typeof Undici.Agent = require('undici/lib/dispatcher/agent.js');
export type Agent = Undici.Agent;
export type Dispatcher = Undici.Dispatcher;
export type RequestOptions = Omit<Undici.Dispatcher.RequestOptions, 'origin' | 'path' | 'method'> & Partial<Pick<Undici.Dispatcher.RequestOptions, 'method'>> & { dispatcher?: Dispatcher };
export type ResponseData = Undici.Dispatcher.ResponseData;

const apiRequest: (this: Dispatcher, options: Undici.Dispatcher.RequestOptions) => Promise<ResponseData> = require('undici/lib/api/api-request.js');
const { getGlobalDispatcher }: { getGlobalDispatcher(): Dispatcher } = require('undici/lib/global.js');

/** undici's `request(url, options)`: through `options.dispatcher`, else undici's global one. */
export function request(url: string, options: RequestOptions = {}): Promise<ResponseData> {
  const { dispatcher = getGlobalDispatcher(), ...rest } = options;
  const { origin, pathname, search } = new URL(url);
  return apiRequest.call(dispatcher, { ...rest, origin, path: pathname + search, method: rest.method ?? (rest.body ? 'PUT' : 'GET') });
}
