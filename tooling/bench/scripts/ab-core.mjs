// A/B of two builds of @keyfold/envelope-core in ONE process, interleaved round by round:
//   node tooling/bench/scripts/ab-core.mjs BASE/dist/index.js NEW/dist/index.js [rounds] [sliceMs]
// Each build gets the same local-wrap KEK provider (BaseKeyProvider + localWrap, resilience off, like the env
// provider). Per case and round, each build runs a fixed-time loop of seal + open; the printed figure is the
// median over rounds of the same-round ratio NEW / BASE, wall clock and per CPU-second. Two builds in one process
// see the same load, so this is steadier than two separate bench runs on a busy machine.
import { randomBytes } from 'node:crypto';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

const [basePath, newPath, roundsArg, sliceArg] = process.argv.slice(2);
if (!basePath || !newPath) {
  process.stderr.write('usage: node ab-core.mjs BASE/dist/index.js NEW/dist/index.js [rounds=15] [sliceMs=150]\n');
  process.exit(2);
}
const rounds = Number(roundsArg ?? 15);
const sliceMs = Number(sliceArg ?? 150);
const load = async (p) => import(pathToFileURL(resolve(p)).href);
const builds = { base: await load(basePath), new: await load(newPath) };
const kek = new Uint8Array(randomBytes(32));

function providerFor(core) {
  class LocalKek extends core.BaseKeyProvider {
    kind = 'env';
    keyId = 'KEYFOLD_KEK';
    protection = 'software';
    constructor() {
      super({ resilience: false });
    }
    _wrapKey(dataKey, context) {
      const aad = core.localWrapAad(this.kind, this.keyId, '1', core.encodeContext(context));
      return Promise.resolve({ kind: this.kind, keyId: this.keyId, keyVersion: '1', ciphertext: core.localWrap(kek, dataKey, aad) });
    }
    _unwrapKey(wrapped, context) {
      const aad = core.localWrapAad(this.kind, this.keyId, wrapped.keyVersion, core.encodeContext(context));
      const key = core.localUnwrap(kek, wrapped.ciphertext, aad);
      if (!key) throw new core.UnwrapFailedError();
      return Promise.resolve(key);
    }
    _describe() {
      return Promise.resolve({ kind: this.kind, keyId: this.keyId, protection: this.protection, activeVersion: '1', versions: ['1'], capabilities: this.capabilities });
    }
  }
  return new LocalKek();
}

const cases = [];
for (const size of [64, 1024]) {
  for (const cache of [false, true]) {
    for (const context of [undefined, { tenant: 'acme', table: 'orders' }]) {
      cases.push({ name: `${size} B, ${cache ? 'cache' : 'no cache'}, ${context ? 'context' : 'no context'}`, size, cache, context });
    }
  }
}

async function slice(env, pt, context) {
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  let n = 0;
  const opts = context ? { context } : {};
  while (performance.now() - t0 < sliceMs) {
    await env.open(await env.seal(pt, context), opts);
    n++;
  }
  const ms = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  return { wall: n / ms, cpu: n / ((cpu.user + cpu.system) / 1000) };
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

console.log(`load average at start: ${(await import('node:os')).loadavg().map((l) => l.toFixed(2)).join(' / ')}`);
console.log(`${rounds} rounds x ${sliceMs} ms per build and case, order alternating; ratio = NEW / BASE round trips (seal + open)`);
console.log(`${'case'.padEnd(34)} ${'wall'.padStart(7)} ${'CPU'.padStart(7)}  NEW rt/s (median)`);
for (const c of cases) {
  const pt = new Uint8Array(randomBytes(c.size));
  const envs = Object.fromEntries(
    Object.entries(builds).map(([k, core]) => [k, core.createEnvelope({ providers: [providerFor(core)], cache: c.cache ? { capacity: 100, maxAge: 300000, maxMessages: 1000000 } : false })]),
  );
  // Each build opens what the other sealed: same bytes.
  const x = await envs.new.open(await envs.base.seal(pt, c.context), c.context ? { context: c.context } : {});
  const y = await envs.base.open(await envs.new.seal(pt, c.context), c.context ? { context: c.context } : {});
  if (Buffer.compare(Buffer.from(x), Buffer.from(pt)) !== 0 || Buffer.compare(Buffer.from(y), Buffer.from(pt)) !== 0) throw new Error('builds disagree');
  for (const k of ['base', 'new']) await slice(envs[k], pt, c.context); // warm-up
  const wall = [];
  const cpu = [];
  const rate = [];
  for (let r = 0; r < rounds; r++) {
    const order = r % 2 ? ['new', 'base'] : ['base', 'new'];
    const res = {};
    for (const k of order) {
      globalThis.gc?.();
      res[k] = await slice(envs[k], pt, c.context);
    }
    wall.push(res.new.wall / res.base.wall);
    cpu.push(res.new.cpu / res.base.cpu);
    rate.push(res.new.wall * 1000);
  }
  console.log(`${c.name.padEnd(34)} ${median(wall).toFixed(2).padStart(6)}x ${median(cpu).toFixed(2).padStart(6)}x  ${Math.round(median(rate))}`);
}
