// Instance ids and module keys as Gate accepts them (api.md §11): the
// reasons a malformed one is refused, the same for every transport.

const UUID_CANONICAL = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const UUID_ANY = /^(urn:uuid:)?\{?([0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12})\}?$/;

/** Why an instance id is unacceptable, or undefined when it is a canonical UUID v4 (api.md §11.2). */
export function instanceIdError(id: string): string | undefined {
  const m = UUID_ANY.exec(id);
  const braced = id.startsWith('{') !== id.endsWith('}');
  if (!m || braced || (m[1] && id.includes('{'))) return 'instance id must be a UUID';
  const hex = m[2].replace(/-/g, '');
  if (hex.length !== 32) return 'instance id must be a UUID';
  const withHyphens = m[2].includes('-');
  if (m[2].split('-').length !== 1 && m[2].split('-').length !== 5) return 'instance id must be a UUID';
  const version = parseInt(hex[12], 16);
  const variant = parseInt(hex[16], 16);
  if (version !== 4) return 'instance UUID version must be 4';
  if ((variant & 0xc) !== 0x8) return 'instance UUID variant must be RFC 4122';
  if (id.startsWith('{')) return 'instance UUID must not be surrounded by brackets';
  if (m[1]) return 'instance UUID must not have namespace prefix';
  if (!withHyphens || !UUID_CANONICAL.test(id)) return 'instance UUID must use lower-case hex encoding';
  return undefined;
}

/** Why a module key is unacceptable (api.md §11.1). */
export function moduleKeyError(key: string): string | undefined {
  if (key.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(key)) return 'module hash must be hex-encoded';
  if (key !== key.toLowerCase()) return 'module hash must use lower-case hex encoding';
  return undefined;
}
