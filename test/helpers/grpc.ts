// gRPC services for the tests without .proto files: messages are raw bytes, methods named by kind.
import * as grpc from '@grpc/grpc-js';
import { freeAddress } from './net.ts';

const bytes = (b: Buffer) => b;

/** A service `test.Echo` whose methods take and give raw bytes: name → [request stream?, response stream?]. */
export function rawService<const T extends Record<string, readonly [boolean, boolean]>>(methods: T): { [K in keyof T]: grpc.MethodDefinition<Buffer, Buffer> } {
  return Object.fromEntries(Object.entries(methods).map(([name, [requestStream, responseStream]]) => [name, {
    path: `/test.Echo/${name}`,
    requestStream,
    responseStream,
    requestSerialize: bytes,
    requestDeserialize: bytes,
    responseSerialize: bytes,
    responseDeserialize: bytes,
  }])) as { [K in keyof T]: grpc.MethodDefinition<Buffer, Buffer> };
}

/** The three streaming kinds: Count (server stream of 1..n, each `pad` wide), Sum (client stream), Chat (both ways). */
export function streamingHandlers(pad = 0): grpc.UntypedServiceImplementation {
  return {
    Count: (call: grpc.ServerWritableStream<Buffer, Buffer>) => {
      for (let i = 1; i <= Number(call.request.toString()); i++) call.write(Buffer.from(String(i).padStart(pad, '0')));
      call.end();
    },
    Sum: (call: grpc.ServerReadableStream<Buffer, Buffer>, callback: grpc.sendUnaryData<Buffer>) => {
      let sum = 0;
      call.on('data', (m: Buffer) => (sum += Number(m.toString())));
      call.on('end', () => callback(null, Buffer.from(String(sum))));
    },
    Chat: (call: grpc.ServerDuplexStream<Buffer, Buffer>) => {
      call.on('data', (m: Buffer) => call.write(Buffer.concat([Buffer.from('re:'), m])));
      call.on('end', () => call.end());
    },
  };
}

/** Binds the server, plaintext (h2c), on a free loopback address; resolves with it. */
export async function listenInsecure(server: grpc.Server): Promise<string> {
  const address = await freeAddress();
  await new Promise<void>((resolve, reject) => server.bindAsync(address, grpc.ServerCredentials.createInsecure(), (error) => (error ? reject(error) : resolve())));
  return address;
}
