/**
 * Command table entry of `keyfold rewrap` (envelopes in files or in a database column moved to the active KEK
 * version). Data only, like `table.ts`: the command module, `@keyfold/rotation` and the database drivers are
 * imported when the command runs.
 * @module
 */
import type { CommandSpec } from './table.js';

export const rewrap: CommandSpec = {
  name: 'rewrap',
  summary: "re-wrap envelopes in files or a database column under the provider's active KEK version",
  usage:
    'keyfold rewrap FILE... | DIR... --recursive | --stdin-list  [--check] [--dir DIR] [--json]\n' +
    '       keyfold rewrap --table T --column C [--id-column ID] --database-url URL [--check] [--batch-size N] [--concurrency N]',
  description: [
    "Envelopes sealed directly under the installation's KEK (keyfold encrypt without --tenant) keep needing the " +
      "version they were sealed under; 'keyfold kek rotate' only moves the key store's keys. rewrap gives each " +
      "envelope a new header whose data key is wrapped under the provider's active version: the body bytes are not " +
      'touched and the key commitment is kept. Each new envelope is opened with the active version before it ' +
      'replaces the old one.',
    'Files (binary or kf1. armor) are replaced atomically: a temporary file in the same directory with the same ' +
      'permission bits and owner, flushed to disk, renamed over the file, then the directory flushed; any failure, ' +
      'SIGINT or SIGTERM leaves the old file as it was and no temporary file behind. A file changed by someone else ' +
      'while it was re-wrapped, a read-only file and a file with several hard links are refused. Each file is ' +
      'reported as rewrapped, current (already on the active version), tenant (sealed under a tenant key, which ' +
      "'keyfold tenant rotate' rotates: left as it is), skipped (directory walk only: not an envelope, a symbolic link, not a " +
      'regular file) or failed with its error code; the others are still processed.',
    'Directories need --recursive; the walk never follows symbolic links (they are reported as skipped, so it cannot ' +
      'leave the tree) and skips files that are not Keyfold envelopes. A FILE named on the command line (or in ' +
      '--stdin-list, one path a line) that is not an envelope is a failure; a named symbolic link is followed to its ' +
      'file (the link stays).',
    '--table re-wraps the envelope column C (BLOB/bytea or kf1. text) of table T row by row, in batches with ' +
      'compare-and-swap writes (a row the application changed meanwhile is left alone). --database-url: ' +
      'postgres://user@host:port/db (the password from the URL or $PGPASSWORD; it is never printed) or sqlite:PATH ' +
      '(also file:PATH). Rows under another key (tenant envelopes) are counted and left as they are. A progress bar ' +
      'is shown on a terminal; Ctrl-C stops after the batch in progress (exit 130), and a second run re-wraps only ' +
      'what is left.',
    '--check writes nothing: it reads headers only and lists what is not on the active version. Exit status: 0 when ' +
      'every envelope is current (or under a tenant key); 1 when some are on another version; 3 (or 1, by the ' +
      'exit-code table) when some could not be read or re-wrapped, e.g. DECRYPT_FAILED for a tampered envelope; ' +
      '130 when interrupted. Every run and check is recorded in the audit log (envelopes.rewrap, envelopes.check: ' +
      "the source and the counts per KEK version, never contents), and 'keyfold kek retire' warns with those counts.",
  ],
  options: {
    recursive: { type: 'boolean', short: 'r', description: 'walk directories (symbolic links are not followed)' },
    'stdin-list': { type: 'boolean', description: 'read the paths to re-wrap from stdin, one a line' },
    check: { type: 'boolean', description: 'list what is not on the active version; write nothing' },
    table: { type: 'string', valueName: 'T', description: 'the table holding envelopes (schema.table for PostgreSQL)' },
    column: { type: 'string', valueName: 'C', description: 'the envelope column of --table' },
    'id-column': { type: 'string', valueName: 'ID', description: 'the unique, ordered row id column of --table (default id)' },
    'database-url': {
      type: 'string',
      valueName: 'URL',
      description: 'postgres://user@host:port/db (password from the URL or $PGPASSWORD) or sqlite:PATH / file:PATH',
    },
    'batch-size': { type: 'string', valueName: 'N', description: '--table: rows per batch (default 500)' },
    concurrency: { type: 'string', valueName: 'N', description: '--table: rows re-wrapped at once (default 1 for file/env, 16 otherwise)' },
  },
  positionals: true,
  examples: [
    'keyfold kek add && keyfold kek rotate && keyfold rewrap --recursive /srv/app/blobs',
    'keyfold rewrap --check -r /srv/app/blobs --json | jq .counts',
    'find /srv -name "*.kf" | keyfold rewrap --stdin-list',
    'PGPASSWORD=... keyfold rewrap --table documents --column body --database-url postgres://app@db/app',
    'keyfold rewrap --check --table documents --column body --database-url sqlite:./app.db',
  ],
  load: () => import('../commands/rewrap.js'),
};
