#!/usr/bin/env node
// Fresh-clone bootstrap: `npm test` and `npm run demo` must work as the very first command on a machine that has
// only Node.js and npm. This installs the pinned pnpm (via npx when it is not in node_modules yet) and the
// workspace from the lockfile. It is a no-op in about a second when everything is already installed.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const PNPM_VERSION = '10.34.9';

const [major, minor] = process.versions.node.split('.').map(Number);
if (major < 20 || (major === 20 && minor < 19)) {
  console.error(`keyfold needs Node.js >= 20.19; this is ${process.versions.node}.`);
  process.exit(1);
}

const env = { ...process.env, TURBO_TELEMETRY_DISABLED: '1', npm_config_nodedir: process.env.npm_config_nodedir ?? '/usr' };
const localPnpm = join(root, 'node_modules', '.bin', 'pnpm');
const cmd = existsSync(localPnpm) ? localPnpm : 'npx';
const args = existsSync(localPnpm) ? [] : ['-y', `pnpm@${PNPM_VERSION}`];
args.push('install', '--frozen-lockfile', '--reporter=append-only');
if (existsSync(join(root, 'node_modules', '.modules.yaml'))) args.push('--prefer-offline');

const r = spawnSync(cmd, args, { cwd: root, env, stdio: ['ignore', 'pipe', 'inherit'] });
if (r.status !== 0) {
  process.stdout.write(r.stdout ?? '');
  console.error(`bootstrap: pnpm install failed (exit ${r.status ?? r.signal}).`);
  process.exit(r.status ?? 1);
}
