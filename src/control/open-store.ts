// `--store`: where a control plane keeps its desired state. A directory (the default: its state
// directory) is one machine's file store; etcd://host:port[,host:port…][/prefix] is an etcd cluster
// that any number of control planes share, each store under /faultline/<prefix>/ (default "default").
import { ErrorCode, FaultlineError } from '../errors.ts';
import { LocalElector, type Elector } from './election.ts';
import { EtcdStore } from './etcd-store.ts';
import { FileStore, type Store } from './store.ts';

export interface EtcdSpec {
  readonly hosts: string[];
  readonly prefix: string;
}

const HOST_PORT = /^(\[[0-9a-f:.]+\]|[a-z0-9]([a-z0-9.-]*[a-z0-9])?)(:([0-9]{1,5}))?$/i;

/** Parses etcd://h1:2379,h2:2379[/prefix]; a member without a port is on etcd's 2379. */
export function parseEtcdSpec(spec: string): EtcdSpec {
  const bad = (why: string): FaultlineError =>
    new FaultlineError(ErrorCode.StoreInvalid, `--store ${spec}: ${why} (expected etcd://host:port[,host:port…][/prefix])`);
  const match = /^etcd:\/\/([^/]*)(?:\/(.*))?$/.exec(spec);
  if (!match) throw bad('not an etcd:// address');
  const members = match[1]!.split(',');
  const hosts = members.map((member) => {
    const parts = HOST_PORT.exec(member.trim());
    if (!parts) throw bad(`"${member}" is not host:port`);
    const port = parts[4] === undefined ? 2379 : Number(parts[4]);
    if (port < 1 || port > 65_535) throw bad(`port ${parts[4]} of "${member}" is out of range`);
    return `${parts[1]}:${port}`;
  });
  const prefix = (match[2] ?? '').replace(/\/$/, '') || 'default';
  if (!/^[a-z0-9][a-z0-9.-]*$/.test(prefix)) throw bad(`the prefix "${prefix}" is not lowercase letters, digits, "-" and "."`);
  return { hosts, prefix };
}

/** The store `--store` names (etcd:// or a directory), else the file store in `stateDir`; etcd is checked to answer. */
export async function openStore(spec: string | undefined, stateDir: string): Promise<Store> {
  if (spec === undefined || spec === '') return new FileStore(stateDir);
  if (spec.startsWith('etcd://')) return EtcdStore.connect(parseEtcdSpec(spec));
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(spec)) {
    throw new FaultlineError(ErrorCode.StoreInvalid, `--store ${spec}: unknown kind of store (a directory, or etcd://host:port[,host:port…][/prefix])`);
  }
  return new FileStore(spec);
}

/** The election that goes with a store: etcd's own, or this process alone for a file store. */
export function electorFor(store: Store): Elector {
  return store instanceof EtcdStore ? store : new LocalElector(store);
}
