// A control plane reduced to its election, in its own process so that a test can kill it (-9) as a
// host would die: campaigns, prints "leading" once it leads, and holds on until killed.
// Usage: node etcd-candidate.ts <host,host> <prefix> <election> <candidate> <ttlMs>
import { EtcdStore } from '../../src/control/etcd-store.ts';

const [hosts, prefix, election, candidate, ttlMs] = process.argv.slice(2);
const store = await EtcdStore.connect({ hosts: hosts!.split(','), prefix: prefix! });
const leadership = await store.campaign(election!, candidate!, { ttlMs: Number(ttlMs) });
process.stdout.write('leading\n');
leadership.signal.addEventListener('abort', () => process.stdout.write('lost\n'));
