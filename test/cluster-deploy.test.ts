// The files in deploy/ stay what the generators make of their shard maps, are
// accepted by the installed HAProxy, and name settings poolq has.

import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { haproxyBucketMap, haproxyConfig, type HaproxyOptions } from '../src/cli/cluster/haproxy-config.js';
import { haproxyBinary } from '../src/cli/cluster/haproxy-process.js';
import { SETTINGS } from '../src/config.js';
import { bucketsOf, parseShardMap } from '../src/core/shard-map.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const read = (file: string) => readFileSync(path.join(ROOT, file), 'utf8');
const temp = mkdtempSync(path.join(os.tmpdir(), 'poolq-deploy-'));
afterAll(() => rmSync(temp, { recursive: true, force: true }));

const deployments: { name: string; map: string; config: string; options: HaproxyOptions }[] = [
  {
    name: 'one host (systemd)',
    map: 'deploy/shard-map.json',
    config: 'deploy/haproxy.cfg',
    options: { bind: ':8000', bucketMapPath: '/etc/haproxy/poolq-buckets.map' },
  },
  {
    name: 'Kubernetes',
    map: 'deploy/k8s/shard-map.json',
    config: 'deploy/k8s/haproxy.cfg',
    options: { bind: ':8000', bucketMapPath: '/run/poolq-proxy/buckets.map', dns: true },
  },
];

describe.each(deployments)('deploy files: $name', ({ map, config, options }) => {
  it('hold the generator output for their shard map, and HAProxy 2.6 accepts it', () => {
    const shardMap = parseShardMap(read(map));
    expect(read(config)).toBe(haproxyConfig(shardMap, options));
    // the same configuration with the bucket map at a path that exists here
    const bucketMap = path.join(temp, `${path.basename(path.dirname(map))}.map`);
    writeFileSync(bucketMap, haproxyBucketMap(shardMap));
    const checked = path.join(temp, `${path.basename(path.dirname(map))}.cfg`);
    writeFileSync(checked, haproxyConfig(shardMap, { ...options, bucketMapPath: bucketMap }));
    const output = execFileSync(haproxyBinary(), ['-c', '-f', checked], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    expect(output).toContain('Configuration file is valid');
    for (const name of shardMap.shards.keys()) expect(bucketsOf(shardMap, name).length).toBeGreaterThan(1300);
  });
});

describe('the cluster command', () => {
  it('prints the bucket map the proxy reads, as `poolq cluster` and as `npm run cluster` (the Kubernetes init container runs it)', () => {
    const expected = haproxyBucketMap(parseShardMap(read('deploy/k8s/shard-map.json')));
    const args = ['haproxy-map', '--shard-map', path.join(ROOT, 'deploy/k8s/shard-map.json')];
    expect(execFileSync(process.execPath, [path.join(ROOT, 'bin/poolq.js'), 'cluster', ...args], { encoding: 'utf8' })).toBe(expected);
    expect(execFileSync(process.execPath, [path.join(ROOT, 'dist/src/cli/cluster.js'), ...args], { encoding: 'utf8' })).toBe(expected);
  });
});

describe('deploy/poolq@.service', () => {
  it('sets only environment variables poolq reads, including both cluster settings', () => {
    const unit = read('deploy/poolq@.service');
    const names = [...unit.matchAll(/^Environment=([A-Z_]+)=/gm)].map((m) => m[1]);
    const known = new Set<string>([...Object.values(SETTINGS).map((s) => s.env), 'GLIBC_TUNABLES', 'MALLOC_MMAP_THRESHOLD_']);
    expect(names.filter((n) => !known.has(n))).toEqual([]);
    expect(names).toEqual(expect.arrayContaining([SETTINGS.shardMap.env, SETTINGS.shardName.env, SETTINGS.dataDir.env, SETTINGS.port.env]));
    // shard poolq-N listens on 810N: the addresses of deploy/shard-map.json
    const shardMap = parseShardMap(read('deploy/shard-map.json'));
    [...shardMap.shards].forEach(([name, info], n) => expect([name, info.address]).toEqual([`poolq-${n}`, `127.0.0.1:810${n}`]));
    expect(unit).toMatch(/^ExecReload=\/bin\/kill -HUP \$MAINPID$/m);
    expect(unit).toMatch(/^Restart=always$/m);
  });
});

describe('deploy/k8s', () => {
  it('runs one pod per shard of the map, each with its own volume, ready on /readyz', () => {
    const statefulSet = read('deploy/k8s/poolq.yaml');
    const shardMap = parseShardMap(read('deploy/k8s/shard-map.json'));
    expect(statefulSet).toContain(`replicas: ${shardMap.shards.size}`);
    [...shardMap.shards].forEach(([name, info], n) => expect([name, info.address]).toEqual([`poolq-${n}`, `poolq-${n}.poolq:8000`]));
    expect(statefulSet).toMatch(/readinessProbe:\s+httpGet: \{ path: \/readyz, port: http \}/);
    expect(statefulSet).toMatch(/volumeClaimTemplates:/);
    expect(statefulSet).toMatch(/name: SHARD_NAME\s+valueFrom: \{ fieldRef: \{ fieldPath: metadata.name \} \}/);
    expect(statefulSet).toContain("args: ['--shard-map', '/etc/poolq/shard-map.json']");
    expect(statefulSet).toContain('mountPath: /etc/poolq');
    const proxy = read('deploy/k8s/proxy.yaml');
    expect(proxy).toContain('/run/poolq-proxy/master.sock');
    expect(proxy).toContain('haproxy-map --shard-map /etc/poolq/shard-map.json > /run/poolq-proxy/buckets.map');
    expect(read('deploy/k8s/kustomization.yaml')).toMatch(/files:\s+- shard-map.json[\s\S]*files:\s+- haproxy.cfg/);
  });
});
