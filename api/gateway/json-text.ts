/**
 * The exact text of each item of a JSON array (a JSON-RPC batch), so that capture stores every
 * message of a batch byte for byte as it passed. One pass, no recursion: nesting depth costs
 * nothing. The input must already have parsed as a JSON array.
 */
export function jsonArrayItems(text: string): string[] {
  const items: string[] = [];
  let depth = 0;
  let inString = false;
  let start = -1;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++; // backslash: the next character is escaped
      else if (c === 0x22) inString = false;
      continue;
    }
    if (c === 0x22) {
      inString = true;
      if (depth === 1 && start < 0) start = i;
    } else if (c === 0x5b || c === 0x7b) {
      // [ {
      if (depth === 1 && start < 0) start = i;
      depth++;
    } else if (c === 0x5d || c === 0x7d) {
      // ] }
      depth--;
      if (depth === 0) {
        if (start >= 0) items.push(text.slice(start, i).trimEnd());
        break;
      }
    } else if (c === 0x2c && depth === 1) {
      // ,
      items.push(text.slice(start, i).trimEnd());
      start = -1;
    } else if (depth === 1 && start < 0 && !isJsonSpace(c)) {
      start = i; // a number, true, false or null
    }
  }
  return items;
}

function isJsonSpace(c: number): boolean {
  return c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d;
}
