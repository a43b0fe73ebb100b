// Call sites of Gate's ABI library bodies, by the import they serve
// (docs/snapshot.md, "Call sites"): the second part of Gate's numbering.

import { resolveImport } from '../abi/imports.ts';
import { DEFAULT_LIBRARY_SITES, LIBRARY_SITES } from './call-sites.ts';

/** Sites of the library body behind an imported function. */
export function librarySitesOf(module: string, field: string): number {
  try {
    const r = resolveImport(module, field);
    return LIBRARY_SITES[`${r.namespace}.${r.name}`] ?? DEFAULT_LIBRARY_SITES;
  } catch {
    return DEFAULT_LIBRARY_SITES;
  }
}
