import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';

// Doc file -> the anchors its headings get on GitHub (lower case, punctuation dropped, spaces to hyphens).
export function docAnchors(): Map<string, string[]> {
  const anchors = new Map<string, string[]>();
  for (const name of readdirSync('docs').filter((n) => n.endsWith('.md'))) {
    const file = path.join('docs', name);
    const headings = [...readFileSync(file, 'utf8').matchAll(/^#{1,6} (.+)$/gm)].map((m) => slug(m[1]!));
    anchors.set(file, headings);
  }
  return anchors;
}

function slug(heading: string): string {
  return heading
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{N}\s_-]/gu, '')
    .replace(/\s/g, '-');
}
