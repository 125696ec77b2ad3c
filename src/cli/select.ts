import type { RemoteConfig } from '../config/schema.js';
import { AppError } from '../errors.js';

// The options of a command that reads every remote, or the one --remote names.
export interface RemotesOptions {
  config: string;
  remote?: string;
  json: boolean;
}

// --remote ID narrows a command to one remote; an unknown id is a usage error that lists the known ones.
export function selectRemotes(remotes: RemoteConfig[], id: string | undefined): RemoteConfig[] {
  if (id === undefined) return remotes;
  const found = remotes.filter((r) => r.id === id);
  if (found.length > 0) return found;
  throw new AppError('USAGE', `There is no remote "${id}" in the config`, {
    value: id,
    hint: `use one of: ${remotes.map((r) => r.id).join(', ')}`,
  });
}
