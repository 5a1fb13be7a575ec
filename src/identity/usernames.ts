// User names as the upstream most likely compares them. A legacy login usually ignores case
// and surrounding blanks, and a Unicode-aware one treats compatibility forms (full-width
// `ｍａｌｌｏｒｙ`, ligatures) as their plain letters: if sluice kept `MALLORY`, ` mallory` and
// `ｍａｌｌｏｒｙ` apart, one person would hold three budgets. Folding too much only merges
// spellings the upstream may also merge; folding too little is a bypass.
export type UsernameMode = 'case-insensitive' | 'case-sensitive' | 'exact'

export function normalizeUsername(name: string, mode: UsernameMode): string {
  if (mode === 'exact') return name
  const nfkc = name.normalize('NFKC').trim()
  if (mode === 'case-sensitive') return nfkc
  // Upper then lower case: a full case fold for the letters that matter (ß → ss, ı → i, ſ → s),
  // as Java's equalsIgnoreCase and .NET's OrdinalIgnoreCase compare upper-cased forms.
  return nfkc.toUpperCase().toLowerCase().normalize('NFKC')
}
