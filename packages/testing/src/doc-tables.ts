// Reads the rows of a Markdown table that documents an error catalog, so a
// test can hold the catalog and its docs table in step.

/**
 * The cells of every table row whose first cell is a code starting with
 * `codePrefix` (`| \`PROTO_ERR_...\` | ... |`), trimmed; a cell that is one
 * code span (`` `text` ``) is unquoted, any other cell is left as written.
 */
export function docTableRows(markdown: string, codePrefix: string): string[][] {
  return markdown
    .split('\n')
    .filter((line) => line.startsWith(`| \`${codePrefix}`))
    .map((line) =>
      line
        .split('|')
        .slice(1, -1)
        .map((cell) => cell.trim().replace(/^`([^`]*)`$/, '$1')),
    );
}
