import ms from 'ms';

// Written as the prior art wrote them ("7d", "1h", "30s"); a bare number is refused: its unit would be a guess.
export function parseDuration(text: string): number | undefined {
  if (!/^\s*\d+(\.\d+)?\s*[a-zA-Z]+\s*$/.test(text)) return undefined;
  const value = ms(text as ms.StringValue);
  return typeof value === 'number' && Number.isFinite(value) && value > 0 ? value : undefined;
}
