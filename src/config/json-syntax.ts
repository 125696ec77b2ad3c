// Pure helpers that name a JSON syntax error the way an editor shows it.

export interface TextPosition {
  line: number;
  column: number;
}

export function positionAt(text: string, offset: number): TextPosition {
  const before = text.slice(0, offset);
  return { line: before.split('\n').length, column: offset - (before.lastIndexOf('\n') + 1) + 1 };
}

// The first comma followed only by blanks and a closing } or ] (outside strings): JSON allows none, and JSON.parse
// names the bracket after it, not the comma. Its offset, or undefined.
export function trailingCommaOffset(text: string): number | undefined {
  let inString = false;
  let comma: number | undefined;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (inString) {
      if (c === '\\') i++;
      else if (c === '"') inString = false;
      continue;
    }
    if (c === '"') {
      inString = true;
      comma = undefined;
    } else if (c === ',') comma = i;
    else if ((c === '}' || c === ']') && comma !== undefined) return comma;
    else if (!/\s/.test(c)) comma = undefined;
  }
  return undefined;
}
