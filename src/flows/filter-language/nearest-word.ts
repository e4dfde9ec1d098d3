// The word a mistyped one most likely meant: for "did you mean" in usage and filter errors.

/** The closest of `words` within `maxDistance` edits (a prefix of 2+ letters counts as 1). */
export function nearestWord(word: string, words: readonly string[], maxDistance = 2): string | undefined {
  let best: string | undefined;
  let bestDistance = maxDistance + 1;
  for (const w of words) {
    const d = w.startsWith(word) && word.length >= 2 ? 1 : editDistance(word, w);
    if (d < bestDistance) [best, bestDistance] = [w, d];
  }
  return best;
}

function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let diagonal = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const above = row[j]!;
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, diagonal + (a[i - 1] === b[j - 1] ? 0 : 1));
      diagonal = above;
    }
  }
  return row[b.length]!;
}
