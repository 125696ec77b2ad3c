// Pure: text as roff reads it. Hyphens are escaped so options render as ASCII and copy as typed; a line that would
// start with a dot or a quote (a request) is protected; anything outside ASCII is named by its code point.
export function roffText(text: string): string {
  return text
    .replace(/\\/g, '\\e')
    .replace(/-/g, '\\-')
    .replace(/[^\x20-\x7e\n]/gu, (c) => `\\[u${c.codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')}]`)
    .replace(/^([.'])/gm, '\\&$1');
}

// Inline fonts, for names (bold) and values to replace (italic).
export function bold(text: string): string {
  return `\\fB${roffText(text)}\\fR`;
}

export function italic(text: string): string {
  return `\\fI${roffText(text)}\\fR`;
}

// The .TH line: name, section, no date (the page changes only with the definitions), source, manual.
export function titleLine(name: string, section: number, source: string, manual: string): string {
  return `.TH ${name.toUpperCase().replace(/-/g, '\\-')} ${section} "" "${source}" "${manual}"`;
}
