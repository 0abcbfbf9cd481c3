// What the faultline command's subcommands share: option parsers, the operator's token and control
// plane, and stopping on a signal.
import { readFile } from 'node:fs/promises';
import { InvalidArgumentError } from 'commander';

/** On SIGINT or SIGTERM: close what runs, then exit 0. */
export function stopOnSignal(close: () => Promise<void>): void {
  const stop = async () => {
    await close();
    process.exit(0);
  };
  process.once('SIGINT', () => void stop());
  process.once('SIGTERM', () => void stop());
}

/** The control plane an operator's command talks to: its URL, the admin token, the CA to trust it through. */
export async function controlAt(options: { control: string; tokenFile?: string; controlCa?: string }): Promise<{ url: string; token: string; ca: string | undefined }> {
  const { readControlCa } = await import('../http/control-transport.ts');
  return { url: options.control, token: await readToken(options.tokenFile), ca: await readControlCa(options.controlCa) };
}

/** A repeatable option's values, in order. */
export function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

/** The bearer token: from a file (trimmed) or FAULTLINE_TOKEN; never printed. */
export async function readToken(file: string | undefined): Promise<string> {
  const token = file ? (await readFile(file, 'utf8')).trim() : (process.env.FAULTLINE_TOKEN ?? '').trim();
  if (!token) throw new InvalidArgumentError(file ? `the token file ${file} is empty` : 'a token is required: --token-file FILE or FAULTLINE_TOKEN');
  return token;
}

/** A whole number above zero, for options that count. */
export function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0) throw new InvalidArgumentError('expected a positive whole number');
  return n;
}
