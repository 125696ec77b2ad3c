// XO names backups by their UTC start time, "20261122T061500Z"; older names lack the Z and are UTC too.
const DATETIME = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z?/;

// The instant (epoch ms) a backup name stands for, or undefined when the name carries no valid datetime.
export function parseBackupDatetime(name: string): number | undefined {
  const match = DATETIME.exec(name);
  if (match === null) return undefined;
  const [year, month, day, hour, minute, second] = match.slice(1).map(Number) as [
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  const instant = Date.UTC(year, month - 1, day, hour, minute, second);
  const back = new Date(instant);
  // Date.UTC rolls 20261332 over into the next year; a name that does not round-trip is not a datetime.
  if (
    back.getUTCFullYear() !== year ||
    back.getUTCMonth() !== month - 1 ||
    back.getUTCDate() !== day ||
    back.getUTCHours() !== hour ||
    back.getUTCMinutes() !== minute ||
    back.getUTCSeconds() !== second
  ) {
    return undefined;
  }
  return instant;
}

// The whole name is a datetime (a config or pool date folder), with nothing after it.
export function isDatetimeName(name: string): boolean {
  return /^\d{8}T\d{6}Z?$/.test(name) && parseBackupDatetime(name) !== undefined;
}

// The day bucket of an instant: its UTC calendar day, "YYYY-MM-DD".
export function utcDay(instant: number): string {
  return new Date(instant).toISOString().slice(0, 10);
}

const VM_METADATA = /^\d{8}T\d{6}Z?\.json$/;

// A VM backup's json, named by its datetime. Here, not in patterns.ts, so that what only reads names (the lift) does
// not load micromatch (docs/dev/performance-history.md, "Lift (session 10)").
export function isVmMetadataName(fileName: string): boolean {
  return VM_METADATA.test(fileName);
}
