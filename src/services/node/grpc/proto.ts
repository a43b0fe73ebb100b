// The external service protocol (service.proto) loaded for @grpc/grpc-js,
// with the message shapes as TypeScript sees them (proto-loader defaults:
// camelCase field names, bytes as Buffer, absent fields as defaults).

import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';

export const PROTO_PATH = path.join(path.dirname(fileURLToPath(import.meta.url)), 'service.proto');

export const packageDefinition = protoLoader.loadSync(PROTO_PATH, {
  defaults: true,
  // Keep Gate's snake_case field names so that messages read like the proto.
  keepCase: true,
});

export interface ServiceMessage {
  name: string;
  revision: string;
  require_principal: boolean;
}
export interface InitResponse {
  services: ServiceMessage[];
}
export interface InstanceConfigMessage {
  max_send_size: number;
  process_key: Uint8Array;
  principal_id: string;
  instance_uuid: Uint8Array;
}
export interface CreateRequest {
  service_name: string;
  config: InstanceConfigMessage;
  snapshot: Uint8Array;
}
export interface CreateResponse {
  id: Uint8Array;
  restoration_error: string;
}
export interface IdRequest {
  id: Uint8Array;
}
export interface HandleRequest {
  id: Uint8Array;
  data: Uint8Array;
}
export interface SnapshotRequest {
  id: Uint8Array;
  outgoing: Uint8Array;
  incoming: Uint8Array;
}
export interface BytesValue {
  value: Uint8Array;
}
export type Empty = Record<string, never>;

/** Method definitions of one service of the package (path, serializers). */
export function methods(service: 'Root' | 'Instance'): grpc.ServiceDefinition {
  return packageDefinition[`gate.grpc.${service}`] as unknown as grpc.ServiceDefinition;
}
