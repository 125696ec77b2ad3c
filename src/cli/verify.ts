import { IoctlAdapter } from '../attributes/ioctl.js';
import type { Clock } from '../clock.js';
import { loadConfig } from '../config/load.js';
import { errorsOf, forEachRemote, remoteErrorText, resultsOf } from './each-remote.js';
import { verifyRemote } from '../verify/verify.js';
import { EXIT } from './exit-codes.js';
import { printJson, type Io } from './io.js';
import { selectRemotes, type RemotesOptions } from './select.js';

// `verify`: exits 1 on any finding, naming each one.
export async function runVerify(options: RemotesOptions, io: Io, clock: Clock): Promise<number> {
  const config = loadConfig(options.config);
  const attributes = new IoctlAdapter();
  const remotes = selectRemotes(config.remotes, options.remote);
  const progressLabel = (remote: { id: string }, done: number, total: number): string =>
    `verifying ${remote.id}: ${done}/${total}`;
  const outcomes = await forEachRemote(remotes, config, { json: options.json, progressLabel }, (context, onProgress) =>
    verifyRemote(context, attributes, {
      now: clock.now(),
      jsonSettleMs: config.jsonSettleMs,
      protectChains: context.protectChains ?? config.protectChains,
      onProgress,
    }),
  );
  const reports = resultsOf(outcomes);
  const errors = errorsOf(outcomes);
  const ok = errors.length === 0 && reports.every((r) => r.findings.length === 0);
  // verify's JSON has always reported errors without a hint (its text names it).
  const unhinted = errors.map(({ remote, code, message }) => ({ remote, code, message }));
  if (options.json)
    printJson(io, { ok, verifiedAt: new Date(clock.now()).toISOString(), remotes: reports, errors: unhinted });
  else {
    for (const r of reports) {
      io.out(
        `remote ${r.remote}: ${r.entriesChecked} indexed unit(s) and ${r.foldersChecked} backup folder(s) checked: ${r.findings.length === 0 ? 'every unit is immutable and unchanged, and no completed backup in its window is unprotected' : `${r.findings.length} finding(s)`}`,
      );
      for (const f of r.findings) io.out(`  ${f.kind.toUpperCase()} ${f.path}: ${f.detail}`);
    }
    for (const e of errors) io.out(remoteErrorText(e));
  }
  return ok ? EXIT.ok : EXIT.failure;
}
