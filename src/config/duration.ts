import ms from 'ms';

// Written as the prior art wrote them ("7d", "1h", "30s"), in every form `ms` reads (the README lists them); a bare
// number is refused: its unit would be a guess. Spaces only between the number and the unit, as `ms` allows.
export function parseDuration(text: string): number | undefined {
  if (!/^\d+(\.\d+)? *[a-zA-Z]+$/.test(text)) return undefined;
  const value = ms(text as ms.StringValue);
  return typeof value === 'number' && Number.isFinite(value) && value > 0 ? value : undefined;
}
