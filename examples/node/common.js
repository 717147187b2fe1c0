// What both example scripts need: the services loaded from protos/, promise-returning calls, call metadata, and
// readable errors. The scripts themselves follow the invites tutorial step by step.
'use strict';

const path = require('node:path');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');

// Load the services from protos/. Ids are fixed64: with `longs: String` they are decimal strings both ways.
const PROTO_DIR = path.resolve(__dirname, '../../protos');
const SERVICES = ['Users', 'Communities', 'Roles', 'Channels', 'Members', 'Invites', 'Updates'];
const definition = protoLoader.loadSync(
  SERVICES.map((name) => `communities/v1/${name.toLowerCase()}.proto`),
  { keepCase: true, longs: String, enums: String, defaults: true, oneofs: true, includeDirs: [PROTO_DIR] },
);
const v1 = grpc.loadPackageDefinition(definition).communities.v1;

// grpc-js calls take a callback; this turns one call into a promise.
function call(client, method, request, metadata) {
  return new Promise((resolve, reject) => {
    client[method](request, metadata, (error, response) => (error ? reject(error) : resolve(response)));
  });
}

function authorization(scheme, token) {
  const metadata = new grpc.Metadata();
  metadata.set('authorization', `${scheme} ${token}`);
  return metadata;
}

// A google.protobuf.Timestamp ({seconds: '...', nanos}) as an ISO 8601 string.
function timestamp({ seconds, nanos }) {
  return new Date(Number(seconds) * 1000 + Math.floor(nanos / 1e6)).toISOString();
}

// An error as its status code name and message, plus the details of the google.rpc.Status the server attaches
// to every error (binary, in the `grpc-status-details-bin` trailer): the ErrorInfo reason and, for bad fields,
// the BadRequest violations. Without google/rpc/*.proto at hand, a few lines of protobuf wire format read them.
function explain(error) {
  if (error.code === undefined) return error.message;
  const lines = [`${grpc.status[error.code]}: ${error.details}`];
  const [status] = error.metadata?.get('grpc-status-details-bin') ?? [];
  for (const any of status ? strings(status, 3) : []) {
    // Status.details (3): Any{type_url (1), value (2)}.
    const [typeUrl] = strings(any, 1).map(String);
    const [value = Buffer.alloc(0)] = strings(any, 2);
    if (typeUrl?.endsWith('/google.rpc.ErrorInfo')) {
      // ErrorInfo: reason (1), metadata (3): map entries {key (1), value (2)}.
      const metadata = strings(value, 3).map((entry) => ` ${strings(entry, 1).join('')}=${strings(entry, 2).join('')}`);
      lines.push(`  reason: ${strings(value, 1).join('')}${metadata.join('')}`);
    } else if (typeUrl?.endsWith('/google.rpc.BadRequest')) {
      for (const violation of strings(value, 1)) {
        // BadRequest.field_violations (1): {field (1), description (2)}.
        lines.push(`  ${strings(violation, 1).join('')}: ${strings(violation, 2).join('')}`);
      }
    }
  }
  if (error.code === grpc.status.UNAVAILABLE) {
    lines.push('  (is the server running? ./scripts/serve, or set COMMUNITIES_ADDRESS)');
  } else if (error.code === grpc.status.UNAUTHENTICATED) {
    lines.push("  (check the token: a bot token with `Bot`, a person's token with `Bearer`)");
  }
  return lines.join('\n');
}

// The ErrorInfo reason of an error (e.g. 'CURSOR_EXPIRED'), to tell apart errors that share a status code;
// undefined when there is none.
function reason(error) {
  const [status] = error.metadata?.get('grpc-status-details-bin') ?? [];
  for (const any of status ? strings(status, 3) : []) {
    const [typeUrl] = strings(any, 1).map(String);
    const [value = Buffer.alloc(0)] = strings(any, 2);
    if (typeUrl?.endsWith('/google.rpc.ErrorInfo')) return strings(value, 1).join('');
  }
  return undefined;
}

// The values of length-delimited field `wanted` (strings, bytes, messages) in an encoded protobuf message.
function strings(buffer, wanted) {
  const found = [];
  let at = 0;
  const varint = () => {
    let value = 0;
    for (let shift = 0; ; shift += 7) {
      const byte = buffer[at++];
      value += (byte & 0x7f) * 2 ** shift;
      if (!(byte & 0x80)) return value;
    }
  };
  while (at < buffer.length) {
    const key = varint();
    const [field, type] = [Math.floor(key / 8), key % 8];
    if (type === 0) varint();
    else if (type === 1) at += 8;
    else if (type === 5) at += 4;
    else if (type === 2) {
      const length = varint();
      if (field === wanted) found.push(buffer.subarray(at, at + length));
      at += length;
    } else break; // groups: not used by google.rpc
  }
  return found;
}

// IMPORTANT: never hard-code tokens or commit them; read them from the environment.
function requireBotToken() {
if (!process.env.COMMUNITIES_BOT_TOKEN) {
  console.error(
    'error: COMMUNITIES_BOT_TOKEN is not set. Create a bot with\n' +
      '  .venv/bin/communities users create "Game Bot" --bot --json\n' +
      'and export its token as COMMUNITIES_BOT_TOKEN.',
  );
  process.exit(1);
}
}

// One client per service, keyed by lower-case name, to COMMUNITIES_ADDRESS (default 127.0.0.1:50051).
function connect() {
  const address = process.env.COMMUNITIES_ADDRESS || '127.0.0.1:50051';
  const credentials = grpc.credentials.createInsecure();
  return Object.fromEntries(SERVICES.map((name) => [name.toLowerCase(), new v1[name](address, credentials)]));
}

// Runs main(clients, ...args); prints a failure with its details and sets a non-zero exit code.
function run(main, clients, ...args) {
  return main(clients, ...args)
    .catch((error) => {
      console.error(`error: ${explain(error)}`);
      process.exitCode = 1;
    })
    .finally(() => Object.values(clients).forEach((client) => client.close()));
}

module.exports = { grpc, call, authorization, timestamp, explain, reason, requireBotToken, connect, run };
